-- include: work, log, gauge, states
-- Fenced write: only the lease holder of the current step (or anyone, with an empty token)
-- may change a job that has not ended; optionally append spooled records and a log entry,
-- and record a pagination cursor as seen (a loop, and no change, if it was seen before).
-- It also keeps the job's pending work (app/dispatch) in the same atomic step: the next
-- step's deadline when the write hands over (ARGV[5..7]); on a terminal status, the step work
-- settled and, for a job with a callback_url, its webhook's first attempt made pending.
-- KEYS[1] job (hash)
-- KEYS[2] the job's lease
-- KEYS[3] the job's state log (list; log.lua)
-- KEYS[4] cursors seen (set of digests)
-- KEYS[5] jobs-by-state gauge (gauge.lua)
-- KEYS[6] due (work.lua)
-- KEYS[7] pending (work.lua)
-- KEYS[8] the tenant's audit log (stream; '' none)
-- KEYS[9..] spool blocks (lists), one per block written, in ARGV's order
-- ARGV[1] lease token ('' unfenced)
-- ARGV[2] the step number the job must be at ('' any)
-- ARGV[3] ttl (s) of every key written
-- ARGV[4] seen digest ('' none)
-- ARGV[5] next step ('' none), ARGV[6] its deadline, ARGV[7] '1' parked
-- ARGV[8] the step's member, ARGV[9] the webhook's member, ARGV[10] the webhook's deadline
-- ARGV[11] '1': the log entry is quiet (published, not logged)
-- ARGV[12] the number of field/value pairs; ARGV[13..] the pairs, then per spool block: its
--          number of records and the records; then the log entry ('' none); last, the
--          audit entry ('' none), the oldest audit id kept (its MINID) and the log's ttl (s)
-- Returns 1 written (WriteResult.WRITTEN), 0 nothing changed: the job has ended or the
-- caller lost its lease or step (REFUSED), -1 the cursor was seen before (SEEN).
local job, lease, log, seen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local due, pending = KEYS[6], KEYS[7]
if ARGV[1] ~= '' and redis.call('GET', lease) ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' and redis.call('HGET', job, 'seq') ~= ARGV[2] then return 0 end
local st = redis.call('HGET', job, 'status')
if tq_ended(st) then return 0 end
local ttl = tonumber(ARGV[3])
if ARGV[4] ~= '' then
  if redis.call('SADD', seen, ARGV[4]) == 0 then return -1 end
  redis.call('EXPIRE', seen, ttl)
end
local i = 12
local np = tonumber(ARGV[i]); i = i + 1
local h = {}
for j = 1, np * 2 do h[j] = ARGV[i]; i = i + 1 end
for k = 9, #KEYS do
  local n = tonumber(ARGV[i]); i = i + 1
  local batch = {}
  for j = 1, n do
    batch[#batch + 1] = ARGV[i]; i = i + 1
    if #batch == 500 then redis.call('RPUSH', KEYS[k], unpack(batch)); batch = {} end
  end
  if #batch > 0 then redis.call('RPUSH', KEYS[k], unpack(batch)) end
  if n > 0 then redis.call('EXPIRE', KEYS[k], ttl) end
end
local ended = false
for j = 1, #h, 2 do
  if h[j] == 'status' then
    tq_move(KEYS[5], st, h[j + 1])
    ended = tq_ended(h[j + 1])
  end
end
if np > 0 then redis.call('HSET', job, unpack(h)) end
redis.call('EXPIRE', job, ttl)
if ARGV[5] ~= '' then tq_pending(due, pending, ARGV[8], ARGV[5], ARGV[6], ARGV[7]) end
if ended then
  tq_settled(due, pending, ARGV[8])
  local url = redis.call('HGET', job, 'callback_url')
  if url and url ~= '' and redis.call('HEXISTS', pending, ARGV[9]) == 0 then
    tq_pending(due, pending, ARGV[9], '0', ARGV[10], '0')
  end
end
local entry = ARGV[i]
if entry and entry ~= '' then tq_log(log, entry, ARGV[11], ttl) end
local audit = ARGV[i + 1]
if audit and audit ~= '' then
  redis.call('XADD', KEYS[8], 'MINID', ARGV[i + 2], '*', 'e', audit)
  redis.call('EXPIRE', KEYS[8], ARGV[i + 3])
end
return 1
