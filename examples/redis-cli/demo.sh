#!/usr/bin/env bash
# Login, validate, list, log out everywhere: redis-session from the shell with redis-cli.
#
# Needs a redis-server with the module loaded and `user_id` as an index:
#   redis-server --loadmodule ./target/release/libredis_session.so indexes user_id
# Run:  REDIS_PORT=6379 bash demo.sh   (exits non-zero if anything is unexpected)
#
# On a Redis Cluster (the module on every node), give it the port of one node instead:
#   REDIS_CLUSTER_PORT=7000 bash demo.sh
# It then runs `redis-cli -c`, which follows MOVED: a node that does not serve the slot of a
# command's key (the token; the value of LIST and REVOKEINDEX; CREATE's ROUTE key, or its
# session's slot without one) answers MOVED, and redis-cli sends it again to the node named.
#
# Without a terminal redis-cli prints replies raw: a bulk string as its text, an array one
# element per line, nil as an empty line. -e makes an error reply exit non-zero (Redis 7.0+).
set -euo pipefail

fail() { echo "FAILED: $*" >&2; exit 1; }
# A token: hex, after the slot tag of its slot ({WJ}) on a cluster.
token_re='(\{[0-9A-Za-z]+\})?[0-9a-f]+'
token_of() { [[ $1 =~ \"token\":\"($token_re)\" ]] && echo "${BASH_REMATCH[1]}"; }

user_id=$(( (RANDOM << 15 | RANDOM) + 1 )) # one no other run is using
if [ -n "${REDIS_CLUSTER_PORT:-}" ]; then
    port=$REDIS_CLUSTER_PORT
    cli() { redis-cli -c -h 127.0.0.1 -p "$port" -e "$@"; }
    # CREATE names the key it is routed by: the user's index key, whose hash tag {<user_id>}
    # puts the session in that user's slot.
    route=(ROUTE "user_id:{$user_id}")
    echo "mode:     cluster, through 127.0.0.1:$port (redis-cli -c)"
else
    port=${REDIS_PORT:-6379}
    cli() { redis-cli -h 127.0.0.1 -p "$port" -e "$@"; }
    route=() # accepted outside a cluster, and unused
    echo "mode:     standalone, 127.0.0.1:$port"
fi

# Login, twice: a laptop and a phone. The reply is the data plus token and createdAt.
laptop=$(cli SESSION.CREATE "{\"user_id\":$user_id,\"device\":\"laptop\",\"roles\":[\"admin\"]}" "${route[@]}")
phone=$(cli SESSION.CREATE "{\"user_id\":$user_id,\"device\":\"phone\"}" TTL 600 "${route[@]}")
laptop_token=$(token_of "$laptop") || fail "no token in the CREATE reply: $laptop"
phone_token=$(token_of "$phone") || fail "no token in the CREATE reply: $phone"
echo "login:    user $user_id on the laptop -> token ${laptop_token:0:16}..."
echo "login:    user $user_id on the phone  -> token ${phone_token:0:16}..."
if [ -n "${REDIS_CLUSTER_PORT:-}" ]; then
    [[ $laptop_token == \{* ]] || fail "a cluster token starts with its slot tag: $laptop_token"
fi

# Validate: every request does this; it returns the data and prolongs the session.
data=$(cli SESSION.VALIDATE "$laptop_token")
echo "validate: $data"
[[ $data == "{\"user_id\":$user_id,\"device\":\"laptop\",\"roles\":[\"admin\"],\"createdAt\":\""* ]] ||
    fail "validate returns the data as created, without the token"

# List: every live session of the user, one JSON object per line, with its token and sessionId.
listed=$(cli SESSION.LIST user_id "$user_id")
while read -r line; do
    [[ $line =~ \"sessionId\":\"($token_re)\" ]] || fail "no sessionId in: $line"
    [[ $line =~ \"device\":\"([a-z]+)\" ]] || fail "no device in: $line"
    printf 'list:     %-6s  sessionId %s...\n' "${BASH_REMATCH[1]}" "$(cut -c1-16 <<<"${line#*\"sessionId\":\"}")"
done <<<"$listed"
[[ $(grep -oE "\"token\":\"$token_re\"" <<<"$listed" | sort) == \
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
[[ $(cli --no-raw SESSION.VALIDATE "$phone_token") == "(nil)" ]] || fail "the other device is logged out too"
[[ $(cli --no-raw SESSION.LIST user_id "$user_id") == "(empty array)" ]] || fail "the user has no sessions left"

echo ok
