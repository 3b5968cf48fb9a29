-- A pipeline's block moves on, once (app/store/pipelines.py `move`): a stage cursor or a
-- queue's head is the guard, and with it the stage counts, the rejected records and the
-- block's inputs to the next stages are written, all or nothing. A second copy of the same
-- move (a coordinator run again after a crash) finds the guard changed and writes nothing.
-- KEYS[1] the pipeline's record (hash)
-- KEYS[2] its rejected list
-- KEYS[3] the queue whose head must be ARGV[3] (popped), or KEYS[1] when ARGV[3] == ''
-- KEYS[4..] per input written (ARGV's list below, in order): its string, the stage's list of
--           entered blocks, the stage's queue (or KEYS[1] when not queued)
-- ARGV[1] the guarded field ('' none), ARGV[2] the value it must hold ('' absent)
-- ARGV[3] the block that must head KEYS[3] ('' none), ARGV[4] the field's new value
-- ARGV[5] TTL (s) of everything written
-- ARGV[6] n: count pairs follow (field, increment) x n
-- then m: rejected entries follow (JSON) x m
-- then k: inputs follow (block id, JSON records, '1' queued | '0') x k
-- then d: the first d rejected entries (present before this move) are removed (a retry)
-- Returns 1 when it moved the block, 0 when the guard failed or the pipeline has ended.
local rec = KEYS[1]
if redis.call('HGET', rec, 'ended') == '1' then return 0 end
if ARGV[1] ~= '' and (redis.call('HGET', rec, ARGV[1]) or '') ~= ARGV[2] then return 0 end
if ARGV[3] ~= '' then
  if redis.call('LINDEX', KEYS[3], 0) ~= ARGV[3] then return 0 end
  redis.call('LPOP', KEYS[3])
end
if ARGV[1] ~= '' then redis.call('HSET', rec, ARGV[1], ARGV[4]) end
local ttl = tonumber(ARGV[5])
local i = 6
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('HINCRBY', rec, ARGV[i], ARGV[i + 1]); i = i + 2
end
local m = tonumber(ARGV[i]); i = i + 1
for _ = 1, m do
  redis.call('RPUSH', KEYS[2], ARGV[i]); i = i + 1
end
if m > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
local k = tonumber(ARGV[i]); i = i + 1
for j = 0, k - 1 do
  local base = 4 + 3 * j
  redis.call('SET', KEYS[base], ARGV[i + 1], 'EX', ttl)
  redis.call('RPUSH', KEYS[base + 1], ARGV[i])
  redis.call('EXPIRE', KEYS[base + 1], ttl)
  if ARGV[i + 2] == '1' then
    redis.call('RPUSH', KEYS[base + 2], ARGV[i])
    redis.call('EXPIRE', KEYS[base + 2], ttl)
  end
  i = i + 3
end
local d = tonumber(ARGV[i])
if d > 0 then redis.call('LTRIM', KEYS[2], d, -1) end
redis.call('EXPIRE', rec, ttl)
return 1
