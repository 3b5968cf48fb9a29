-- include: work
-- A bulk step is ready: queue it by start-time fair queueing. Its start tag is the later of
-- the lane's virtual time (the start tag of the step last taken) and its tenant's finish
-- tag, which then moves on by 1/weight: a tenant with many steps waiting has start tags far
-- ahead, one that just arrived starts at the virtual time, ahead of every waiting step.
-- Queued, the step is no longer a message that could be lost: its pending work's deadline
-- moves out to ARGV[7] (a long wait for its turn is not a lost task; taking its lease when
-- it runs moves the deadline back in), so the sweep resends only a step stuck that long.
-- KEYS[1] ready (zset), KEYS[2] owner (hash), KEYS[3] vtime (hash)
-- KEYS[4] due, KEYS[5] pending (work.lua)
-- ARGV[1] member ("job:seq"), ARGV[2] tenant, ARGV[3] weight (> 0), ARGV[4] limit (0: none)
-- ARGV[5] the step's work member, ARGV[6] its step number, ARGV[7] the deadline while queued
-- Returns 1 queued, 0 it was queued already.
if tq_attempt(KEYS[5], ARGV[5]) == ARGV[6] then
  redis.call('ZADD', KEYS[4], 'XX', 'GT', ARGV[7], ARGV[5])
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local v = tonumber(redis.call('HGET', KEYS[3], '_V') or '0')
local f = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
local start = math.max(v, f)
redis.call('HSET', KEYS[3], ARGV[2], tostring(start + 1 / tonumber(ARGV[3])))
redis.call('ZADD', KEYS[1], start, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[4])
return 1
