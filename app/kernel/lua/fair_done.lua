-- A bulk step ended: its tenant's slot is free. Returns 1 when a turn should be sent (the
-- lane was blocked by a concurrency limit and steps wait), else 0.
-- KEYS[1] ready, KEYS[2] owner, KEYS[4] leases, KEYS[5] running (KEYS[3] unused: vtime)
-- ARGV[1] member
if redis.call('ZREM', KEYS[4], ARGV[1]) == 1 then
  local o = redis.call('HGET', KEYS[2], ARGV[1])
  if o then
    redis.call('HINCRBY', KEYS[5], string.match(o, '^(.*)|'), -1)
    if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('HDEL', KEYS[2], ARGV[1]) end
  end
end
if redis.call('HGET', KEYS[5], '_blocked') == '1' and redis.call('ZCARD', KEYS[1]) > 0 then
  redis.call('HSET', KEYS[5], '_blocked', 0)
  return 1
end
return 0
