-- What users write instead of SESSION.VALIDATE: the module's 0.1.0 storage layout (a hash
-- with the fields data, ttl, deadline and indexes), read and prolonged in one script.
--
-- EVALSHA <sha> 1 <session key>
--
-- Replies the `data` field and moves the key's expiry to now + ttl (never past a non-zero
-- `deadline`, unix ms); raises the expiry of every index key listed in `indexes` (a JSON
-- array) with PEXPIRE ... GT, which, like the module, never shortens an expiry and leaves an
-- index set without one alone. Nil when the key holds no session.
local h = redis.call('HMGET', KEYS[1], 'data', 'ttl', 'deadline', 'indexes')
if not h[1] or not h[2] or not h[3] then
    return false
end
local ttl_ms = tonumber(h[2]) * 1000
local deadline = tonumber(h[3])
if deadline > 0 then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    if now >= deadline then
        return false
    end
    if now + ttl_ms > deadline then
        ttl_ms = deadline - now
    end
end
redis.call('PEXPIRE', KEYS[1], ttl_ms)
if h[4] then
    for _, index in ipairs(cjson.decode(h[4])) do
        redis.call('PEXPIRE', index, ttl_ms, 'GT')
    end
end
return h[1]
