-- The JSON tide writes must be valid for any bytes: decoded here by dkjson.
local h = require("tests.helper")
local ok_dkjson, dkjson = pcall(require, "dkjson")

local function encode(lua_expr)
  local r = h.script("io.write(require('tide.json').encode(" .. lua_expr .. "))")
  assert.are.equal(0, r.code, r.err)
  return r.out
end

describe("json", function()
  it("encodes scalars, arrays and objects with sorted keys", function()
    assert.are.equal('[1,2.5,"x",true,null,{"a":1,"b":[]}]',
      encode('{n = 6, 1, 2.5, "x", true, nil, {b = {}, a = 1}}'))
    assert.are.equal('{"code":0,"ok":true}', encode("{ok = true, code = 0}"))
    assert.are.equal("null", encode("0/0"))
  end)

  it("escapes every control byte, quotes and backslashes", function()
    local out = encode('(function() local t = {} for i = 0, 31 do t[#t + 1] = string.char(i) end '
      .. 'return table.concat(t) .. "\\"\\\\/" end)()')
    assert.is_nil(out:find("[%z\1-\31]"))
    if ok_dkjson then
      local s = dkjson.decode(out)
      assert.are.equal(35, #s)
      for i = 0, 31 do
        assert.are.equal(i, s:byte(i + 1))
      end
      assert.are.equal('"\\/', s:sub(33))
    end
  end)

  it("keeps valid UTF-8 and turns invalid bytes into code points, always valid JSON", function()
    local out = encode('"h\\u{e9}llo \\u{1F600} \\xff\\xfe \\xc3 \\xed\\xa0\\x80 \\xc0\\xaf"')
    assert.truthy(out:find("h\195\169llo", 1, true))
    assert.truthy(out:find("\240\159\152\128", 1, true))
    assert.truthy(out:find("\\u00ff\\u00fe \\u00c3 \\u00ed\\u00a0\\u0080 \\u00c0\\u00af", 1, true))
    assert.is_true(utf8.len(out) ~= nil)
    if ok_dkjson then
      assert.is_not_nil(dkjson.decode(out))
    end
  end)

  it("refuses what JSON cannot hold, naming it", function()
    local r = h.script("local t = {} t.t = t print(pcall(require('tide.json').encode, t)) "
      .. "print(pcall(require('tide.json').encode, print))")
    assert.truthy(r.out:find("false\tjson: cannot encode a table that contains itself", 1, true))
    assert.truthy(r.out:find("false\tjson: cannot encode a function", 1, true))
  end)
end)
