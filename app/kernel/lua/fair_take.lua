-- A bulk worker's turn: the waiting step with the smallest tag whose tenant is under its
-- concurrency limit. Running steps hold a lease; an expired one (its worker died) gives its
-- tenant's slot back. Skipping a step for its limit marks its tenant blocked, so that
-- tenant's next step to finish sends a turn (fair_done).
-- KEYS[1] ready, KEYS[2] owner, KEYS[3] vtime, KEYS[4] leases (zset), KEYS[5] running (hash)
-- ARGV[1] now, ARGV[2] lease (s), ARGV[3] how many waiting steps to look at
-- Returns the member taken, or false.
local function release(m)
  local o = redis.call('HGET', KEYS[2], m)
  if o then
    redis.call('HINCRBY', KEYS[5], string.match(o, '^(.*)|'), -1)
    if not redis.call('ZSCORE', KEYS[1], m) then redis.call('HDEL', KEYS[2], m) end
  end
end
local now = tonumber(ARGV[1])
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
  redis.call('ZREM', KEYS[4], m)
  release(m)
end
local cands = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1, 'WITHSCORES')
for i = 1, #cands, 2 do
  local m, tag = cands[i], cands[i + 1]
  local o = redis.call('HGET', KEYS[2], m)
  if not o then
    redis.call('ZREM', KEYS[1], m)
  else
    local t, lim = string.match(o, '^(.*)|(%d+)$')
    lim = tonumber(lim)
    if lim == 0 or tonumber(redis.call('HGET', KEYS[5], t) or '0') < lim then
      redis.call('ZREM', KEYS[1], m)
      redis.call('ZADD', KEYS[4], now + tonumber(ARGV[2]), m)
      redis.call('HINCRBY', KEYS[5], t, 1)
      redis.call('HSET', KEYS[3], '_V', tag)
      return m
    end
    redis.call('HSET', KEYS[5], '_blocked:' .. t, 1)
  end
end
return false
