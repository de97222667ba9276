-- The effects of SESSION.CREATE in the module's storage layout 2, written with plain
-- commands: one string per session, its expiry set in the same SET, and the index set.
-- A reference for what the layout itself costs, next to create.lua (the 0.1.0 hash layout).
--
-- EVALSHA <sha> 2 <session key> <index key> <data JSON, with createdAt> <ttl seconds> <tag>
--
-- Replies nil for a token already in use (the client draws another). Otherwise stores
-- `s2 <tag> <ttl> 0 ["<index key>"]\n<data>` (deadline 0: no max lifetime) with the
-- session's expiry (SET ... NX PX, which Redis replicates as SET ... PXAT), adds the token to
-- the index set and gives that set the session's expiry when it is new or expires earlier
-- (an index set that exists without an expiry keeps having none, as with the module), and
-- replies the data. The tag is given by the client (16 hex digits): a script has no cheap
-- SipHash keyed by the module's secret, and a layout of one's own would need no tag; it keeps
-- the string as long as the module's. Unlike the module it prunes no stale tokens.
local ttl_ms = tonumber(ARGV[2]) * 1000
local value = 's2 ' .. ARGV[3] .. ' ' .. ARGV[2] .. ' 0 ["' .. KEYS[2] .. '"]\n' .. ARGV[1]
if not redis.call('SET', KEYS[1], value, 'NX', 'PX', ttl_ms) then
    return false
end
local index_ttl = redis.call('PTTL', KEYS[2])
redis.call('SADD', KEYS[2], KEYS[1])
if index_ttl == -2 then
    redis.call('PEXPIRE', KEYS[2], ttl_ms)
elseif index_ttl >= 0 then
    redis.call('PEXPIRE', KEYS[2], ttl_ms, 'GT')
end
return ARGV[1]
