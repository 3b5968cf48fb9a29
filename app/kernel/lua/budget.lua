-- One account's request budget (app/store/budget.py): apply the last response's report, then
-- (op 'take') admit the next request if the sliding-window log has room.
-- KEYS[1] request log (zset request id -> sent at, Redis TIME)
-- KEYS[2] state (hash: limit, window, reset_at, closed_until)
-- ARGV[1] seed limit, ARGV[2] seed window (s), ARGV[3] '1' a fixed window
-- The last response's report ('' each when none):
-- ARGV[4] stated limit, ARGV[5] stated window (s), ARGV[6] remaining, ARGV[7] reset after (s),
-- ARGV[8] closed for (s), ARGV[9] its request's log id, ARGV[10] phantom id prefix,
-- ARGV[11] the limit `remaining` counts down (phantoms only when that is the window we pace by)
-- ARGV[12] op: 'take' or 'observe' (BudgetOp)
-- ARGV[13] the new request's log id
-- ARGV[14] state TTL (s)
-- Returns (BudgetReply) {1, '0'} admitted (ADMITTED), {0, wait_s, limit} refused (REFUSED) or
-- {2, '0'} observed only (OBSERVED).
local log, state = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
if ARGV[4] ~= '' and ARGV[5] ~= '' then
  redis.call('HSET', state, 'limit', ARGV[4], 'window', ARGV[5])
end
local limit = tonumber(redis.call('HGET', state, 'limit')) or tonumber(ARGV[1])
local window = tonumber(redis.call('HGET', state, 'window')) or tonumber(ARGV[2])
local fixed = ARGV[3] == '1'
local margin = math.min(0.05, 0.01 * window)  -- clock steps, a page's processing
local ttl = math.ceil((window + margin) * 1000) + 1000

-- what the last response reported
if ARGV[9] ~= '' then redis.call('ZADD', log, 'XX', now, ARGV[9]) end
if fixed and ARGV[7] ~= '' then
  redis.call('HSET', state, 'reset_at', tostring(now + tonumber(ARGV[7])))
end
local remaining = tonumber(ARGV[6])
if remaining and limit > 0 and tonumber(ARGV[11]) == limit then  -- the window we pace by
  local have = redis.call('ZCOUNT', log, tostring(now - window - margin), '+inf')
  local missing = math.min(limit - remaining - have, 1000)
  for i = 1, missing do redis.call('ZADD', log, now, 'p' .. ARGV[10] .. i) end
  if missing > 0 then redis.call('PEXPIRE', log, ttl) end
end
local closed = tonumber(redis.call('HGET', state, 'closed_until')) or 0
local closed_for = tonumber(ARGV[8])
if closed_for and now + closed_for > closed then
  closed = now + closed_for
  redis.call('HSET', state, 'closed_until', tostring(closed))
end
if ARGV[4] ~= '' or ARGV[7] ~= '' or closed_for then  -- a closure outlives itself
  redis.call('EXPIRE', state, math.max(tonumber(ARGV[14]), math.ceil(closed - now) + 60))
end
if ARGV[12] ~= 'take' then return {2, '0'} end

-- the next send
if now < closed then return {0, tostring(closed - now), limit} end
if limit <= 0 then return {1, '0'} end
local reset_at = tonumber(redis.call('HGET', state, 'reset_at'))
if fixed and reset_at and now >= reset_at then
  redis.call('ZREMRANGEBYSCORE', log, '-inf', '(' .. tostring(reset_at - margin))
  redis.call('HDEL', state, 'reset_at')
  reset_at = nil
end
redis.call('ZREMRANGEBYSCORE', log, '-inf', tostring(now - window - margin))
if redis.call('ZCARD', log) < limit then
  redis.call('ZADD', log, now, ARGV[13])
  redis.call('PEXPIRE', log, ttl)
  return {1, '0'}
end
local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window + margin - now
if fixed and reset_at then wait = math.min(wait, reset_at - now) end
return {0, tostring(math.max(wait, 0.001)), limit}
