-- A pipeline's state changes (app/store/pipelines.py `set_state`): fields, a status and its
-- log entry, refused once the pipeline has ended (an ending is final; a retry of rejected
-- records reopens it with ARGV[2] == 'reopen').
-- KEYS[1] the pipeline's record (hash), KEYS[2] its state log (list)
-- ARGV[1] the new status ('' keep), ARGV[2] 'end' ends it, 'reopen' requires it ended, ''
-- ARGV[3] log entry JSON ('' none), ARGV[4] TTL (s), ARGV[5..] field, value pairs ('' deletes)
-- Returns 1 when written, 0 when refused.
local rec = KEYS[1]
local ended = redis.call('HGET', rec, 'ended') == '1'
if redis.call('EXISTS', rec) == 0 then return 0 end
if ARGV[2] == 'reopen' then
  if not ended then return 0 end
  redis.call('HDEL', rec, 'ended')
elseif ended then
  return 0
end
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', rec, ARGV[i])
  else redis.call('HSET', rec, ARGV[i], ARGV[i + 1]) end
end
if ARGV[1] ~= '' then redis.call('HSET', rec, 'status', ARGV[1]) end
if ARGV[2] == 'end' then redis.call('HSET', rec, 'ended', '1') end
if ARGV[3] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  redis.call('LTRIM', KEYS[2], -200, -1)
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
end
redis.call('EXPIRE', rec, tonumber(ARGV[4]))
return 1
