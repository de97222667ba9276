-- What users write instead of SESSION.CREATE: the client draws the token and computes the
-- index key and createdAt itself, and the script stores the module's 0.1.0 layout (a hash)
-- in one step. create_string.lua writes the current layout (one string) the same way.
--
-- EVALSHA <sha> 2 <session key> <index key> <data JSON, with createdAt> <ttl seconds>
--
-- Replies nil for a token already in use (the client draws another). Otherwise writes the
-- hash fields data, ttl, deadline (0: no max lifetime) and indexes, sets the session's
-- expiry, adds the token to the index set and gives that set the session's expiry when it
-- is new or expires earlier (an index set that exists without an expiry keeps having none,
-- as with the module), and replies the data. Unlike the module it prunes no stale tokens.
if redis.call('EXISTS', KEYS[1]) == 1 then
    return false
end
local ttl_ms = tonumber(ARGV[2]) * 1000
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'ttl', ARGV[2], 'deadline', '0',
    'indexes', '["' .. KEYS[2] .. '"]')
redis.call('PEXPIRE', KEYS[1], ttl_ms)
local index_ttl = redis.call('PTTL', KEYS[2])
redis.call('SADD', KEYS[2], KEYS[1])
if index_ttl == -2 then
    redis.call('PEXPIRE', KEYS[2], ttl_ms)
elseif index_ttl >= 0 then
    redis.call('PEXPIRE', KEYS[2], ttl_ms, 'GT')
end
return ARGV[1]
