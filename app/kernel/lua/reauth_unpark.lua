-- include: work, log, gauge
-- Out of needs_reauth (resumed or expired), only from needs_reauth. Either way the job
-- leaves the indexes. Resumed (queued), its current step is pending again; expired (failed),
-- its webhook is, if it has a callback_url.
-- KEYS[1] job (hash)
-- KEYS[2] the job's state log
-- KEYS[3] the account's parked index, KEYS[4] the global parked index
-- KEYS[5] jobs-by-state gauge
-- KEYS[6] due, KEYS[7] pending (work.lua)
-- ARGV[1] job id
-- ARGV[2] ttl (s) of the job and its log
-- ARGV[3] the log entry
-- ARGV[4] the new status ('queued' or 'failed')
-- ARGV[5] the step's member, ARGV[6] the webhook's member, ARGV[7] the deadline of either
-- ARGV[8..] field/value pairs
-- Returns (UnparkResult) 1 this call moved the job (MOVED), -1 it was not parked (any more:
-- NOT_PARKED).
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('HGET', KEYS[1], 'status') ~= 'needs_reauth' then return -1 end
tq_move(KEYS[5], 'needs_reauth', ARGV[4])
if ARGV[4] == 'queued' then
  tq_pending(KEYS[6], KEYS[7], ARGV[5], redis.call('HGET', KEYS[1], 'seq'), ARGV[7], '0')
else
  local url = redis.call('HGET', KEYS[1], 'callback_url')
  if url and url ~= '' and redis.call('HEXISTS', KEYS[7], ARGV[6]) == 0 then
    tq_pending(KEYS[6], KEYS[7], ARGV[6], '0', ARGV[7], '0')
  end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', tq_events(KEYS[2]), ARGV[3])
return 1
