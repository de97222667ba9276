#!/usr/bin/env bash
# Login, validate, list, log out everywhere: redis-session from the shell with redis-cli.
#
# Needs a redis-server with the module loaded and `user_id` as an index:
#   redis-server --loadmodule ./target/release/libredis_session.so indexes user_id
# Run:  REDIS_PORT=6379 bash demo.sh   (exits non-zero if anything is unexpected)
#
# Without a terminal redis-cli prints replies raw: a bulk string as its text, an array one
# element per line, nil as an empty line. -e makes an error reply exit non-zero (Redis 7.0+).
set -euo pipefail

port=${REDIS_PORT:-6379}
cli() { redis-cli -h 127.0.0.1 -p "$port" -e "$@"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
token_of() { [[ $1 =~ \"token\":\"([0-9a-f]+)\" ]] && echo "${BASH_REMATCH[1]}"; }

user_id=$(( (RANDOM << 15 | RANDOM) + 1 )) # one no other run is using

# Login, twice: a laptop and a phone. The reply is the data plus token and createdAt.
laptop=$(cli SESSION.CREATE "{\"user_id\":$user_id,\"device\":\"laptop\",\"roles\":[\"admin\"]}")
phone=$(cli SESSION.CREATE "{\"user_id\":$user_id,\"device\":\"phone\"}" TTL 600)
laptop_token=$(token_of "$laptop") || fail "no token in the CREATE reply: $laptop"
phone_token=$(token_of "$phone") || fail "no token in the CREATE reply: $phone"
echo "login:    user $user_id on the laptop -> token ${laptop_token:0:12}..."
echo "login:    user $user_id on the phone  -> token ${phone_token:0:12}..."

# Validate: every request does this; it returns the data and prolongs the session.
data=$(cli SESSION.VALIDATE "$laptop_token")
echo "validate: $data"
[[ $data == "{\"user_id\":$user_id,\"device\":\"laptop\",\"roles\":[\"admin\"],\"createdAt\":\""* ]] ||
    fail "validate returns the data as created, without the token"

# List: every live session of the user, one JSON object per line.
listed=$(cli SESSION.LIST user_id "$user_id")
echo "list:     $(grep -c . <<<"$listed") sessions"
[[ $(grep -o '"token":"[0-9a-f]*"' <<<"$listed" | sort) == \
   $(printf '"token":"%s"\n' "$laptop_token" "$phone_token" | sort) ]] ||
    fail "list shows both sessions: $listed"

# Log out everywhere.
revoked=$(cli SESSION.REVOKEINDEX user_id "$user_id")
echo "revoke:   $revoked sessions ended"
[[ $revoked == 2 ]] || fail "log out everywhere ends both sessions"

# The tokens are now invalid: --no-raw shows nil as (nil).
after=$(cli --no-raw SESSION.VALIDATE "$laptop_token")
echo "validate: $after (the token is no longer valid)"
[[ $after == "(nil)" ]] || fail "a revoked token validates to nil"
[[ $(cli --no-raw SESSION.LIST user_id "$user_id") == "(empty array)" ]] || fail "the user has no sessions left"

echo ok
