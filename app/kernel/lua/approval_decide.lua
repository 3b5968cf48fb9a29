-- include: work, log, gauge, states
-- A person's decision on a job awaiting approval, only while it awaits, only for the
-- binding it was shown, only before it expires. Approved: the preview's blocks move aside
-- (the write's results fill the spool from block 0), the job takes its next step number and
-- that step is pending now. Rejected: cancelled, its step work settled, its webhook pending.
-- Either way the decision's audit entry is appended in the same step.
-- KEYS[1] job (hash), KEYS[2] its state log, KEYS[3] jobs-by-state gauge
-- KEYS[4] due, KEYS[5] pending (work.lua), KEYS[6] the tenant's audit log (stream)
-- KEYS[7..] approving: pairs of (spool block, preview block) to move
-- ARGV[1] 'approve' or 'reject', ARGV[2] the binding approved, ARGV[3] now
-- ARGV[4] ttl (s), ARGV[5] the log entry, ARGV[6] the step's member, ARGV[7] the webhook's
-- member, ARGV[8] the deadline of either, ARGV[9] the audit entry, ARGV[10] its MINID,
-- ARGV[11] the audit log's ttl (s), ARGV[12] the new status (queued when approved,
-- cancelled when rejected), ARGV[13..] field/value pairs
-- Returns {'ok', seq} | {'not_awaiting', status} | {'mismatch'} | {'expired'}
local job = KEYS[1]
local st = redis.call('HGET', job, 'status')
if st ~= 'awaiting_approval' then return {'not_awaiting', st or ''} end
local approval = cjson.decode(redis.call('HGET', job, 'approval') or '{}')
if approval.binding ~= ARGV[2] then return {'mismatch'} end
if tonumber(approval.expires_at or 0) <= tonumber(ARGV[3]) then return {'expired'} end
local seq = tonumber(redis.call('HGET', job, 'seq'))
if ARGV[1] == 'approve' then
  for k = 7, #KEYS, 2 do
    if redis.call('EXISTS', KEYS[k]) == 1 then redis.call('RENAME', KEYS[k], KEYS[k + 1]) end
  end
  seq = seq + 1
  redis.call('HSET', job, 'seq', seq, 'status', ARGV[12], unpack(ARGV, 13))
  tq_move(KEYS[3], st, ARGV[12])
  tq_pending(KEYS[4], KEYS[5], ARGV[6], seq, ARGV[8], '0')
else
  redis.call('HSET', job, 'status', ARGV[12], unpack(ARGV, 13))
  tq_move(KEYS[3], st, ARGV[12])
  tq_settled(KEYS[4], KEYS[5], ARGV[6])
  local url = redis.call('HGET', job, 'callback_url')
  if url and url ~= '' and redis.call('HEXISTS', KEYS[5], ARGV[7]) == 0 then
    tq_pending(KEYS[4], KEYS[5], ARGV[7], '0', ARGV[8], '0')
  end
end
redis.call('EXPIRE', job, ARGV[4])
tq_log(KEYS[2], ARGV[5], '0', ARGV[4])
redis.call('XADD', KEYS[6], 'MINID', ARGV[10], '*', 'e', ARGV[9])
redis.call('EXPIRE', KEYS[6], ARGV[11])
return {'ok', seq}
