-- The window sums of one sum series' chunks, added up where they are (whale/reads.py), exact.
-- Python turns the parts into the total (whale/numbers.py: `window_total`): the sum of every
-- bucket's value as Python reads it (an integral spelling as an exact int, any other as the
-- nearest double), rounded once, as hailwhale/sums.py's `exact_sum` gives it.
-- Each chunk is answered with a digest of its content (SHA-1 of DUMP): a caller that holds
-- the parts of that content, over the same buckets, gets the digest alone and reuses them.
-- KEYS[1..n] the chunk hashes of one series that hold the window (one slot)
-- ARGV       per key, 4 arguments: the first and last bucket start of the window in its
--            chunk; '1' when they are all its buckets (its values are read without their
--            fields), else '0'; the digest the caller holds for it ('' for none)
-- Returns one reply per key: {digest} when the caller holds it, else {digest, kind,
--   partials, integers}; a chunk that does not exist is {'', 'i', {}, {}}. `partials`,
--   doubles spelled with 17 digits, add up exactly to the chunk's values read as doubles;
--   `integers`, integral spellings of 16 digits or more (a double may not hold them), are
--   added as they are. `kind`: 'i' when every value is an integral spelling or an integral
--   double below 2**53 (Python reads both as ints), 'f' when none is a double past 2**53, 'F'
--   when one is, '?' when one is not spelled as HINCRBYFLOAT spells sums (then the parts
--   are empty: read the chunk's points instead).
local find, abs, concat, format = string.find, math.abs, table.concat, string.format
local LIMIT = 9007199254740992  -- 2**53
-- an integral spelling a double may not hold: 16 digits or more, no point
local LONG_INTEGER = '%f[%d%.]' .. string.rep('%d', 16) .. '%d*%f[^%d%.]'
local ODD = {'?', {}, {}}

-- The values of a chunk between two bucket starts (spelled as its fields are), as stored.
local function spellings(key, first, last, whole)
  if whole then
    return redis.call('HVALS', key)
  end
  local flat, values = redis.call('HGETALL', key), {}
  -- decimal spellings of one length compare as their numbers (cheaper than tonumber)
  local digits = #first == #last and #first
  local low, high = tonumber(first), tonumber(last)
  for i = 1, #flat, 2 do
    local field, inside = flat[i], false
    if #field == digits then
      inside = field >= first and field <= last
    else
      local bucket = tonumber(field)
      inside = bucket ~= nil and bucket >= low and bucket <= high
    end
    if inside then values[#values + 1] = flat[i + 1] end
  end
  return values
end

-- Shewchuk's exact sum (Python's math.fsum keeps one so): non-overlapping doubles.
local function exact_partials(numbers)
  local partials, n = {}, 0
  for i = 1, #numbers do
    local x, j = numbers[i], 0
    for p = 1, n do
      local y = partials[p]
      if abs(x) < abs(y) then x, y = y, x end
      local hi = x + y
      local lo = y - (hi - x)
      if lo ~= 0 then j = j + 1; partials[j] = lo end
      x = hi
    end
    n = j + 1
    partials[n] = x
  end
  for p = n + 1, #partials do partials[p] = nil end
  return partials
end

-- {kind, partials, integers} of the values `spelled`.
local function parts(spelled)
  if #spelled == 0 then
    return {'i', {}, {}}
  end
  local joined = concat(spelled, ',')
  if find(joined, '[^%d%.,%-]') then
    return ODD
  end
  local ok, numbers = pcall(cjson.decode, '[' .. joined .. ']')
  if not ok or #numbers ~= #spelled then  -- a value that is not one number
    return ODD
  end
  local integers = {}
  if find(joined, LONG_INTEGER) then
    for i = 1, #spelled do
      local v = spelled[i]
      if #v >= 16 and not find(v, '.', 1, true) then
        integers[#integers + 1] = v
        numbers[i] = 0
      end
    end
  end
  -- Most chunks add up exactly in one double (integers, quarters): try that first.
  local sum, exact, floats, beyond = 0, true, false, false
  for i = 1, #numbers do
    local x = numbers[i]
    local t = sum + x
    local z = t - sum
    if (sum - (t - z)) + (x - z) ~= 0 then exact = false end
    sum = t
    if x % 1 ~= 0 then floats = true end
    if x >= LIMIT or x <= -LIMIT then
      floats = true  -- Python reads an integral double this large as a float
      if x ~= LIMIT and x ~= -LIMIT then beyond = true end
    end
  end
  local partials = exact and {sum} or exact_partials(numbers)
  for p = 1, #partials do
    local x = partials[p]
    if x ~= x or x == math.huge or x == -math.huge then return ODD end
    partials[p] = format('%.17g', x)
  end
  return {beyond and 'F' or (floats and 'f' or 'i'), partials, integers}
end

local out = {}
for k = 1, #KEYS do
  local at = (k - 1) * 4
  local dump = redis.call('DUMP', KEYS[k])
  if not dump then
    out[k] = {'', 'i', {}, {}}
  else
    local digest = redis.sha1hex and redis.sha1hex(dump) or dump  -- fakeredis has no sha1hex
    if digest == ARGV[at + 4] then
      out[k] = {digest}
    else
      local found = parts(spellings(KEYS[k], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3] == '1'))
      out[k] = {digest, found[1], found[2], found[3]}
    end
  end
end
return out
