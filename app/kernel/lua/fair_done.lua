-- A bulk step ended: its tenant's slot is free. Returns 1 when a turn should be sent (a
-- step of this tenant was held back by its concurrency limit), else 0.
-- KEYS[1] ready, KEYS[2] owner, KEYS[4] leases, KEYS[5] running (KEYS[3] unused: vtime)
-- ARGV[1] member
local o = redis.call('HGET', KEYS[2], ARGV[1])
if not o then return 0 end
local t = string.match(o, '^(.*)|')
if redis.call('ZREM', KEYS[4], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[5], t, -1)
  if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('HDEL', KEYS[2], ARGV[1]) end
end
if redis.call('HGET', KEYS[5], '_blocked:' .. t) == '1' then
  redis.call('HSET', KEYS[5], '_blocked:' .. t, 0)
  return 1
end
return 0
