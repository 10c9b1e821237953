"""The Lua scripts of the sessions index in Redis (``index_redis.py``): each runs atomically, so
a reader sees a session's row in every structure of the index or in none.

The index keys (``IndexKeys``, in that order as ``KEYS[2..7]`` of the writes): ``active`` and
``created`` (sorted sets: session id -> epoch seconds), ``rows`` (hash: id -> the meta.json
bytes), ``search`` (hash: id -> what ``q`` looks in), ``member`` (hash: id -> the JSON list of
the field sets holding it, so a change leaves the old ones), ``usage`` (hash: id -> JSON
``[agent id, inputs]``, for sessions with an agent). The field sets (``status:<s>``,
``agent:<id>``, ``queen:<id>``) come last in ``KEYS``. ``KEYS[1]`` is the session's meta key.
"""

from __future__ import annotations

# put_row(first_set, sid, active, created, meta, search, usage): the session's row in every
# structure; KEYS[first_set..] are its field sets.
PUT_ROW = """
local function put_row(first_set, sid, active, created, meta, search, usage)
  local old = redis.call('HGET', KEYS[6], sid)
  if old then
    for _, key in ipairs(cjson.decode(old)) do redis.call('SREM', key, sid) end
  end
  redis.call('ZADD', KEYS[2], active, sid)
  redis.call('ZADD', KEYS[3], created, sid)
  redis.call('HSET', KEYS[4], sid, meta)
  redis.call('HSET', KEYS[5], sid, search)
  local sets = {}
  for i = first_set, #KEYS do
    redis.call('SADD', KEYS[i], sid)
    sets[#sets + 1] = KEYS[i]
  end
  redis.call('HSET', KEYS[6], sid, cjson.encode(sets))
  if usage == '' then redis.call('HDEL', KEYS[7], sid)
  else redis.call('HSET', KEYS[7], sid, usage) end
  redis.call('SET', KEYS[1], meta)
end
"""

# ARGV: sid, active, created, meta bytes, search, usage ('' without an agent).
PUT = PUT_ROW + """
put_row(8, ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
"""

# KEYS[1..7] as PUT; ARGV[1] sid. The meta and every row of the session removed.
REMOVE = """
local sid = ARGV[1]
local old = redis.call('HGET', KEYS[6], sid)
if old then
  for _, key in ipairs(cjson.decode(old)) do redis.call('SREM', key, sid) end
end
redis.call('ZREM', KEYS[2], sid)
redis.call('ZREM', KEYS[3], sid)
for i = 4, 7 do redis.call('HDEL', KEYS[i], sid) end
redis.call('DEL', KEYS[1])
"""

# KEYS[1..7] as PUT, KEYS[8] the staged stream, KEYS[9] the session's stream, KEYS[10..] the
# field sets; ARGV as PUT. The staged stream becomes the session's (without the staging ttl)
# with its meta and row, or nothing happens: EXISTS (the id is taken), NOSTAGE (expired).
COMMIT_IMPORT = PUT_ROW + """
if redis.call('EXISTS', KEYS[1], KEYS[9]) > 0 or redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1
then return redis.error_reply('EXISTS session ' .. ARGV[1]) end
if redis.call('EXISTS', KEYS[8]) == 0 then
  return redis.error_reply('NOSTAGE the staged events of ' .. ARGV[1] .. ' are gone')
end
redis.call('RENAME', KEYS[8], KEYS[9])
redis.call('PERSIST', KEYS[9])
put_row(10, ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
"""

# KEYS[1] active, KEYS[2] created, KEYS[3] rows, KEYS[4] search, KEYS[5..4+ARGV[1]] sets the
# session must be in (agent, queen), the rest: sets it must be in one of (statuses, disjoint).
# ARGV: [1] that count, [2], [3] the activity bounds, [4], [5] the creation bounds, [6] q, [7],
# [8] the cursor's activity and id ('': none), [9] matches to skip, [10] rows to return (0:
# all), [11] the walk's largest step, [12] the plan: 'auto', or 'walk' / 'sets' (tests).
# Returns {total, id, activity, meta, ...}: newest activity first, ties by id descending
# (bytes), as the SQLite index orders them.
# A page walks the activity set down from the cursor and stops once it has its rows. The total
# is ZCOUNT, or a field set's size, when the filter allows; else the matches are found among
# the sessions of the smallest field set (or the statuses' union), or of the activity range
# without field sets. Matches found in sets that are few for the rows wanted are sorted
# instead of walked for (SORT_COST x matches^2 < rows wanted x sessions).
QUERY = """
local SORT_COST = 4  -- a session read and sorted, against one walked past
local function num(text) if text == '' then return nil end return tonumber(text) end
local required, nkeys = tonumber(ARGV[1]), #KEYS
local amin, amax, cmin, cmax = num(ARGV[2]), num(ARGV[3]), num(ARGV[4]), num(ARGV[5])
local q, cursor, cursor_id = ARGV[6], num(ARGV[7]), ARGV[8]
local skip, limit = tonumber(ARGV[9]), tonumber(ARGV[10])
local chunk, plan = tonumber(ARGV[11]), ARGV[12]
local low = amin and ARGV[2] or '-inf'
local high = amax and ARGV[3] or '+inf'

local function in_sets(sid)
  for i = 5, 4 + required do
    if redis.call('SISMEMBER', KEYS[i], sid) == 0 then return false end
  end
  if nkeys == 4 + required then return true end
  for i = 5 + required, nkeys do
    if redis.call('SISMEMBER', KEYS[i], sid) == 1 then return true end
  end
  return false
end

local function matches(sid)
  if not in_sets(sid) then return false end
  if cmin or cmax then
    local created = tonumber(redis.call('ZSCORE', KEYS[2], sid))
    if (cmin and created < cmin) or (cmax and created > cmax) then return false end
  end
  return q == '' or string.find(redis.call('HGET', KEYS[4], sid), q, 1, true) ~= nil
end

local function bytes_below(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function after_cursor(score, sid)
  if not cursor then return true end
  return score < cursor or (score == cursor and bytes_below(sid, cursor_id))
end

local out = {0}
local function full() return limit > 0 and #out >= 1 + 3 * limit end
local function take(sid, score)
  if skip > 0 then skip = skip - 1 return end
  if full() then return end
  out[#out + 1] = sid
  out[#out + 1] = score
  out[#out + 1] = redis.call('HGET', KEYS[3], sid)
end

local function set_sizes()
  local keys, size = {}, 0
  if required > 0 then
    for i = 5, 4 + required do
      local n = redis.call('SCARD', KEYS[i])
      if #keys == 0 or n < size then keys, size = {KEYS[i]}, n end
    end
    return keys, size
  end
  for i = 5, nkeys do
    keys[#keys + 1] = KEYS[i]
    size = size + redis.call('SCARD', KEYS[i])
  end
  return keys, size
end

local function set_matches(keys)  -- {id, activity, its text} of the matches in ``keys``
  local found = {}
  for _, key in ipairs(keys) do
    for _, sid in ipairs(redis.call('SMEMBERS', key)) do
      local text = redis.call('ZSCORE', KEYS[1], sid)
      local score = tonumber(text)
      if (not amin or score >= amin) and (not amax or score <= amax) and matches(sid) then
        found[#found + 1] = {sid, score, text}
      end
    end
  end
  return found
end

local function sorted_page(found)
  table.sort(found, function(a, b)
    if a[2] ~= b[2] then return a[2] > b[2] end
    return bytes_below(b[1], a[1])
  end)
  for _, row in ipairs(found) do
    if after_cursor(row[2], row[1]) then take(row[1], row[3]) end
  end
end

local plain = not cmin and not cmax and q == ''
local sized = plain and not amin and not amax and (required == 0 or nkeys == 5)

local function count()  -- without field sets
  if plain then return redis.call('ZCOUNT', KEYS[1], low, high) end
  local n = 0
  for _, sid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], low, high)) do
    if matches(sid) then n = n + 1 end
  end
  return n
end

local function walk()
  local top, top_score, offset = high, amax, 0
  local step = limit > 0 and math.min(chunk, limit + skip) or chunk  -- doubles up to chunk
  if cursor and (not amax or cursor < amax) then top, top_score = ARGV[7], cursor end
  while not full() do
    local rows = redis.call('ZREVRANGEBYSCORE', KEYS[1], top, low, 'WITHSCORES', 'LIMIT',
                            offset, step)
    for i = 1, #rows, 2 do
      if after_cursor(tonumber(rows[i + 1]), rows[i]) and matches(rows[i]) then
        take(rows[i], rows[i + 1])
      end
    end
    if #rows < 2 * step then return end
    local last, same = tonumber(rows[#rows]), 0
    for i = #rows, 2, -2 do
      if tonumber(rows[i]) ~= last then break end
      same = same + 1
    end
    if top_score == last then offset = offset + same else offset = same end
    top, top_score, step = rows[#rows], last, math.min(chunk, 2 * step)
  end
end

local function sort_them(found)  -- sort the matches, or walk the activity set for them
  if plan ~= 'auto' then return plan == 'sets' end
  local all = redis.call('ZCARD', KEYS[1])  -- a walk reads about want / (found / all)
  return limit == 0 or SORT_COST * found * found < (limit + skip) * all
end

if nkeys > 4 then
  local keys, size = set_sizes()
  local found = nil  -- a filter of one kind of set alone: every session of it matches
  if not sized then found = set_matches(keys) end
  out[1] = found and #found or size
  if sort_them(out[1]) then
    sorted_page(found or set_matches(keys))
  else
    walk()
  end
  return out
end
out[1] = count()
walk()
return out
"""

# KEYS[1] usage, KEYS[2] active. Returns {agent, sessions, inputs, last activity, ...}.
USAGE = """
local rows = redis.call('HGETALL', KEYS[1])
local by_agent, out = {}, {}
for i = 1, #rows, 2 do
  local usage = cjson.decode(rows[i + 1])
  local score = redis.call('ZSCORE', KEYS[2], rows[i])
  local sums = by_agent[usage[1]]
  if not sums then
    sums = {usage[1], 0, 0, score}
    by_agent[usage[1]] = sums
    out[#out + 1] = sums
  end
  sums[2] = sums[2] + 1
  sums[3] = sums[3] + usage[2]
  if tonumber(score) > tonumber(sums[4]) then sums[4] = score end
end
local flat = {}
for _, sums in ipairs(out) do
  for _, value in ipairs(sums) do flat[#flat + 1] = value end
end
return flat
"""
