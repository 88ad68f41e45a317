// frontend/LuaTorch7.cpp - graphc's own `nn`, `optim`, `torch`, `cudnn`, ...
// modules, written in Lua and run inside the sandbox before a model script.
//
// They keep Torch7's surface as model-building scripts use it (constructors,
// `:add`, `:cuda()`, containers' `modules`, `:get`, ...) but compute nothing:
// a module is a table recording its kind, its constructor arguments and the
// script line that made it. Which layers and criteria exist comes from
// LuaModel.cpp's tables, handed to the prelude as arguments. After the script, `collect` flattens
// what it left behind (the model, criterion, optimizer and config) into plain arrays that
// frontend/LuaModel.cpp reads without calling back into Lua.
#include "frontend/LuaModel.h"

namespace graphc::frontend {

const char *torch7Prelude() {
  return R"lua(
local getinfo, loadUserFile, G, loadstring, writeStderr, layers, criterionKinds = ...
local error, type, pairs, ipairs, select, tostring, rawget, rawset, setmetatable,
      getmetatable, unpack, format, concat, insert, remove, floor, gsub =
      error, type, pairs, ipairs, select, tostring, rawget, rawset, setmetatable,
      getmetatable, unpack, string.format, table.concat, table.insert, table.remove, math.floor,
      string.gsub

local MAX_MODULES, MAX_DEPTH = 100000, 100

-- The script line that called into graphc: the first frame that is neither C
-- nor this prelude.
local function where()
  for level = 2, 200 do
    local info = getinfo(level, 'Sl')
    if not info then return nil, nil end
    if info.what ~= 'C' and info.source ~= '=graphc' then
      return info.source, info.currentline
    end
  end
end

-- Errors carry their message and, where known, the place to blame; the
-- message handler in LuaModel.cpp finds the script line otherwise.
local function fail(msg, source, line, var, needle)
  error({graphc_message = msg, source = source, line = line, var = var, needle = needle}, 0)
end

local function num(x)
  if x ~= x then return 'nan' end
  if x == 1/0 then return 'inf' end
  if x == -1/0 then return '-inf' end
  return format('%.14g', x)
end

local MODULE, CRITERION = {}, {}
local function classOf(v)
  if type(v) ~= 'table' then return nil end
  local mt = getmetatable(v)
  return type(mt) == 'table' and rawget(mt, '__graphc') or nil
end
local function isModule(v) return classOf(v) == MODULE end
local function isCriterion(v) return classOf(v) == CRITERION end

local function callText(m)
  local parts = {}
  for i = 1, m.__nargs do
    local a = m.__args[i]
    parts[i] = type(a) == 'number' and num(a) or type(a) == 'string' and format('%q', a)
               or tostring(a)
  end
  return m.__name .. '(' .. concat(parts, ', ') .. ')'
end

local function describe(v)
  local t = type(v)
  if t == 'number' then return num(v) end
  if t == 'string' then return "string '" .. v .. "'" end
  if isModule(v) then return 'module ' .. callText(v) end
  if isCriterion(v) then return 'criterion ' .. callText(v) end
  return t
end

-- Methods every module has.
local Module = {}
local function returnSelf(m) return m end
for _, name in ipairs({'cuda', 'float', 'double', 'type', 'clearState', 'setNumInputDims'}) do
  Module[name] = returnSelf
end
function Module:training() self.train = true; return self end
function Module:evaluate() self.train = false; return self end
function Module:listModules()
  local out = {self}
  for _, c in ipairs(rawget(self, 'modules') or {}) do
    for _, m in ipairs(c:listModules()) do out[#out + 1] = m end
  end
  return out
end
function Module:findModules(typename)
  local out = {}
  for _, m in ipairs(self:listModules()) do
    if m.__name == typename then out[#out + 1] = m end
  end
  return out
end

-- Containers.
local Container = setmetatable({}, {__index = Module})
function Container:add(m, index)
  if not isModule(m) then
    fail(':add() expects a module, got ' .. describe(m))
  end
  if index ~= nil then
    if type(index) ~= 'number' or index < 1 or index > #self.modules + 1 then
      fail(':add() index ' .. describe(index) .. ' is out of range 1 to ' .. (#self.modules + 1))
    end
    insert(self.modules, index, m)
  else
    self.modules[#self.modules + 1] = m
  end
  return self
end
function Container:insert(m, index) return self:add(m, index) end
function Container:remove(index)
  index = index or #self.modules
  if type(index) ~= 'number' or index < 1 or index > #self.modules then
    fail(':remove() index ' .. describe(index) .. ' is out of range 1 to ' .. #self.modules)
  end
  return remove(self.modules, index)
end
function Container:get(i) return self.modules[i] end
function Container:size() return #self.modules end
function Container:training()
  self.train = true
  for _, m in ipairs(self.modules) do m:training() end
  return self
end
function Container:evaluate()
  self.train = false
  for _, m in ipairs(self.modules) do m:evaluate() end
  return self
end

local Pooling = setmetatable({}, {__index = Module})
function Pooling:ceil() self.__ceil = true; return self end
function Pooling:floor() self.__ceil = false; return self end
-- SpatialAveragePooling counts the padding, as Torch7 does by default.
local AvgPooling = setmetatable({}, {__index = Pooling})
function AvgPooling:setCountIncludePad() return self end
function AvgPooling:setCountExcludePad()
  fail(self.__name .. ':setCountExcludePad() is not supported: graphc averages over the ' ..
       'whole window, padding included, as Torch7 does by default')
end

-- Tensors hold only their sizes: enough for :getParameters(), m.weight:size()
-- and :nElement(). Initialising a parameter (:normal, :uniform, :zero, :fill,
-- a module's :reset(stdv)) records how; graphc draws the values from its seed
-- (ir/ModelInfo.cpp), in place of Torch7's default reset().
local TENSOR = {}
local Tensor = {__graphc = TENSOR}
Tensor.__index = Tensor
local function tensor(sizes) return setmetatable({__sizes = sizes}, Tensor) end
function Tensor:nElement()
  local n = 1
  for _, d in ipairs(self.__sizes) do n = n * d end
  return n
end
Tensor.numel = Tensor.nElement
function Tensor:dim() return #self.__sizes end
Tensor.nDimension = Tensor.dim
function Tensor:size(i)
  if i == nil then return {unpack(self.__sizes)} end
  return self.__sizes[i]
end
Tensor.__tostring = function(t) return 'torch.FloatTensor of size ' .. concat(t.__sizes, 'x') end
local function finite(what, v)
  if type(v) ~= 'number' or v ~= v or v == math.huge or v == -math.huge then
    fail(what .. ' expects finite numbers, got ' .. describe(v))
  end
  return v
end
function Tensor:normal(mean, std)
  mean, std = finite(':normal()', mean or 0), finite(':normal()', std or 1)
  if std < 0 then fail(':normal() expects a standard deviation >= 0, got ' .. std) end
  self.__init = {'normal', mean, std}
  return self
end
function Tensor:uniform(a, b)
  a, b = finite(':uniform()', a or 0), finite(':uniform()', b or 1)
  if a > b then fail(':uniform(' .. a .. ', ' .. b .. ') expects a <= b') end
  self.__init = {'uniform', a, b}
  return self
end
function Tensor:fill(v)
  v = finite(':fill()', v)
  if self.__data then
    for i = 1, #self.__data do self.__data[i] = v end
    return self
  end
  self.__init = {'uniform', v, v}
  return self
end
function Tensor:zero() return self:fill(0) end
for _, name in ipairs({'copy', 'mul', 'div', 'add', 'bernoulli', 'apply'}) do
  Tensor[name] = function()
    fail('initialising parameters with :' .. name .. '() is not supported in model files: ' ..
         'use :normal(), :uniform(), :zero(), :fill() or the module\'s :reset(stdv)')
  end
end

-- Tensors with values: the few a script hands a layer (a kernel from
-- torch.ones or image.gaussian1D, a table from nn.tables). They scale, sum
-- and fill; flatten() passes their values to C++.
local ValueTensor = setmetatable({__graphc = TENSOR}, {__index = Tensor})
ValueTensor.__index = ValueTensor
ValueTensor.__tostring = Tensor.__tostring
local MAX_VALUES = 1000000
local function valueTensor(what, sizes, f)
  local n = 1
  for i, d in ipairs(sizes) do
    if type(d) ~= 'number' or d < 1 or d ~= floor(d) or d > MAX_VALUES then
      fail(format('%s size %d must be a positive integer, got %s', what, i, describe(d)))
    end
    n = n * d
  end
  if #sizes == 0 or n > MAX_VALUES then
    fail(format('%s expects 1 to %d elements, got %s', what, MAX_VALUES, num(n)))
  end
  local data = {}
  for i = 1, n do data[i] = f(i) end
  return setmetatable({__sizes = sizes, __data = data}, ValueTensor)
end
function ValueTensor:mul(v)
  v = finite(':mul()', v)
  for i = 1, #self.__data do self.__data[i] = self.__data[i] * v end
  return self
end
function ValueTensor:div(v) return self:mul(1 / finite(':div()', v)) end
function ValueTensor:add(v)
  v = finite(':add()', v)
  for i = 1, #self.__data do self.__data[i] = self.__data[i] + v end
  return self
end
function ValueTensor:sum()
  local s = 0
  for i = 1, #self.__data do s = s + self.__data[i] end
  return s
end
ValueTensor.sumall = ValueTensor.sum
-- Torch7's reset(stdv): weight and bias uniform in [-stdv, stdv]; without
-- stdv, its default (which graphc draws unless told otherwise).
function Module:reset(stdv)
  -- SpatialConvolutionMap's reset(stdv) draws from [-stdv sqrt(3), stdv sqrt(3)].
  if stdv ~= nil and self.__kind == 'SpatialConvolutionMap' then
    stdv = finite(':reset()', stdv) * math.sqrt(3)
  end
  for _, name in ipairs({'weight', 'bias'}) do
    local t = rawget(self, name)
    if classOf(t) == TENSOR then
      if stdv == nil then t.__init = nil else t:uniform(-finite(':reset()', stdv), stdv) end
    end
  end
  return self
end

-- The parameter sizes of a layer (LuaModel.cpp's table names its rule), from
-- its constructor's arguments when they are numbers; C++ checks them later.
local paramRules = {
  Linear = function(a) return {a[2], a[1]}, {a[2]}, 2 end,
  Convolution = function(a) return {a[2], a[1], a[4], a[3]}, {a[2]}, 4 end,
  ConvolutionMM = function(a) return {a[2], a[1] * a[3] * a[4]}, {a[2]}, 4 end,
  BatchNorm = function(a) if a[4] ~= false then return {a[1]}, {a[1]}, 1 end end,
  -- weight [connections, kH, kW], bias [the largest output plane]
  ConvolutionMap = function(a)
    local t = a[1]
    if classOf(t) ~= TENSOR or not t.__data or #t.__sizes ~= 2 or t.__sizes[2] ~= 2 then return end
    if type(a[2]) ~= 'number' or type(a[3]) ~= 'number' then return end
    local nOut = 0
    for i = 2, #t.__data, 2 do if t.__data[i] > nOut then nOut = t.__data[i] end end
    return {t.__sizes[1], a[3], a[2]}, {nOut}, 0
  end,
}
local layerRule = {}
-- The fields Torch7's convolutions keep, which scripts read (cifar.torch's
-- MSR initialisation: v.kW * v.kH * v.nOutputPlane), with its defaults.
local convFields = {'nInputPlane', 'nOutputPlane', 'kW', 'kH', 'dW', 'dH', 'padW', 'padH'}
local function addFields(m)
  local rule = layerRule[m.__kind]
  if rule ~= 'Convolution' and rule ~= 'ConvolutionMM' then return end
  local a = m.__args
  local defaults = {nil, nil, nil, nil, 1, 1, 0, a[7] or 0}
  for i, name in ipairs(convFields) do
    local v = a[i]
    if v == nil then v = defaults[i] end
    if type(v) == 'number' then m[name] = v end
  end
end
local function addParams(m)
  addFields(m)
  local rule = paramRules[layerRule[m.__kind]]
  if not rule then return end
  local w, b, needed = rule(m.__args)
  if not w then return end
  for i = 1, needed do
    if type(m.__args[i]) ~= 'number' then return end
  end
  m.weight, m.bias = tensor(w), tensor(b)
  m.gradWeight, m.gradBias = tensor(w), tensor(b)
end
function Module:parameters()
  local weights, grads = {}, {}
  for _, m in ipairs(self:listModules()) do
    for _, name in ipairs({'weight', 'bias'}) do
      local t = rawget(m, name)
      if classOf(t) == TENSOR then
        weights[#weights + 1] = t
        grads[#grads + 1] = rawget(m, 'grad' .. name:sub(1, 1):upper() .. name:sub(2))
      end
    end
  end
  return weights, grads
end
function Module:getParameters()
  local n = 0
  for _, t in ipairs((self:parameters())) do n = n + t:nElement() end
  return tensor({n}), tensor({n})
end

local made = 0
local classes = {}
local function class(prefix, kind, methods, tag)
  local mt = {__graphc = tag, __index = methods}
  mt.__tostring = function(m) return callText(m) end
  local ctor = setmetatable({}, {
    __call = function(_, ...)
      made = made + 1
      if made > MAX_MODULES then fail('too many modules (more than ' .. MAX_MODULES .. ')') end
      local source, line = where()
      local m = {__kind = kind, __name = prefix .. '.' .. kind, __args = {...},
                 __nargs = select('#', ...), __source = source, __line = line, train = true}
      if methods == Container then m.modules = {} end
      if tag == MODULE then addParams(m) end
      return setmetatable(m, mt)
    end,
    __tostring = function() return prefix .. '.' .. kind end,
  })
  classes[prefix .. '.' .. kind] = ctor
  return ctor
end

-- The layers (LuaModel.cpp's table: name = {methods, cudnn too, parameter
-- rule}) and criteria.
local methodSets = {Module = Module, Container = Container, Pooling = Pooling,
                    AvgPooling = AvgPooling}
local layerKinds, cudnnNames = {}, {}
for kind, row in pairs(layers) do
  layerKinds[kind] = methodSets[row[1]]
  layerRule[kind] = row[3]
  if row[2] then cudnnNames[#cudnnNames + 1] = kind end
end
table.sort(cudnnNames)

local function supported(space, names)
  local list = {}
  for _, n in ipairs(names) do list[#list + 1] = space .. '.' .. n end
  return concat(list, ', ')
end

local nnNames = {}
local nn = {}
for kind, methods in pairs(layerKinds) do
  nn[kind] = class('nn', kind, methods, MODULE)
  nnNames[#nnNames + 1] = kind
end
for _, kind in ipairs(criterionKinds) do
  nn[kind] = class('nn', kind, Module, CRITERION)
  nnNames[#nnNames + 1] = kind
end
table.sort(nnNames)
nn.Module, nn.Container = Module, Container
-- Torch7's connection tables for nn.SpatialConvolutionMap: [connections, 2]
-- rows of (input plane, output plane).
local function planes(what, v)
  if type(v) ~= 'number' or v < 1 or v ~= floor(v) or v > 65536 then
    fail(format('%s expects a positive integer up to 65536, got %s', what, describe(v)))
  end
  return v
end
nn.tables = {
  full = function(nin, nout)
    nin, nout = planes('nn.tables.full', nin), planes('nn.tables.full', nout)
    return valueTensor('nn.tables.full', {nin * nout, 2}, function(k)
      local p = floor((k - 1) / 2) -- row p + 1: input p % nin + 1, output p / nin + 1
      if k % 2 == 1 then return p % nin + 1 end
      return floor(p / nin) + 1
    end)
  end,
  oneToOne = function(n)
    n = planes('nn.tables.oneToOne', n)
    return valueTensor('nn.tables.oneToOne', {n, 2}, function(k) return floor((k - 1) / 2) + 1 end)
  end,
  random = function()
    fail('nn.tables.random is not supported: its table comes from Torch7\'s random generator, ' ..
         'which graphc does not reproduce; use nn.tables.full or nn.tables.oneToOne')
  end,
}
setmetatable(nn, {__index = function(_, k)
  fail(format("unknown module 'nn.%s' (supported: %s)", tostring(k), supported('nn', nnNames)),
       nil, nil, nil, 'nn.' .. tostring(k))
end})

-- cudnn's layers are nn's: the target is graphc's choice, not the script's.
local cudnn = {benchmark = false, fastest = false, verbose = false}
for _, kind in ipairs(cudnnNames) do
  cudnn[kind] = class('cudnn', kind, layerKinds[kind], MODULE)
end
function cudnn.convert(net) return net end
setmetatable(cudnn, {__index = function(_, k)
  fail(format("unknown module 'cudnn.%s' (supported: %s, cudnn.convert)", tostring(k),
              supported('cudnn', cudnnNames)), nil, nil, nil, 'cudnn.' .. tostring(k))
end})

local optimNames = {'adadelta', 'adagrad', 'adam', 'nag', 'rmsprop', 'sgd'}
local optim = {}
local optimizerName = {}
for _, name in ipairs(optimNames) do
  local f = function()
    fail(format('optim.%s is not called in model files; assign it instead: optimizer = optim.%s',
                name, name))
  end
  optim[name] = f
  optimizerName[f] = name
end
setmetatable(optim, {__index = function(_, k)
  fail(format("unknown optimizer 'optim.%s' (supported: %s)", tostring(k),
              supported('optim', optimNames)), nil, nil, nil, 'optim.' .. tostring(k))
end})

local function noop() end
local torch = {
  setdefaulttensortype = noop, manualSeed = noop, seed = noop, setnumthreads = noop,
  getnumthreads = function() return 1 end,
  typename = function(v) return classOf(v) and v.__name or nil end,
}
torch.type = function(v) return classOf(v) and v.__name or type(v) end
torch.ones = function(...)
  return valueTensor('torch.ones', {...}, function() return 1 end)
end
torch.zeros = function(...)
  return valueTensor('torch.zeros', {...}, function() return 0 end)
end

-- The image package's kernels, as Torch7 computes them: arguments in order
-- or as one table of named ones (dok.unpack).
local function named(args, names, defaults)
  local v = {}
  local t = args[1]
  local byName = #args == 1 and type(t) == 'table' and getmetatable(t) == nil
  for i, name in ipairs(names) do
    if byName then v[i] = t[name] else v[i] = args[i] end
    if v[i] == nil then v[i] = defaults[name] end
  end
  return unpack(v, 1, #names)
end
local image = {}
function image.gaussian1D(...)
  local size, sigma, amplitude, normalize, mean = named({...},
    {'size', 'sigma', 'amplitude', 'normalize', 'mean'},
    {size = 3, sigma = 0.25, amplitude = 1, normalize = false, mean = 0.5})
  size = planes('image.gaussian1D', size)
  sigma, amplitude, mean = finite('image.gaussian1D', sigma), finite('image.gaussian1D', amplitude),
                           finite('image.gaussian1D', mean)
  local center = mean * size + 0.5
  local g = valueTensor('image.gaussian1D', {size}, function(i)
    return amplitude * math.exp(-(math.pow((i - center) / (sigma * size), 2) / 2))
  end)
  if normalize then g:div(g:sum()) end
  return g
end
function image.gaussian(...)
  local size, sigma, amplitude, normalize, width, height, sigmaH, sigmaV, meanH, meanV = named({...},
    {'size', 'sigma', 'amplitude', 'normalize', 'width', 'height', 'sigma_horz', 'sigma_vert',
     'mean_horz', 'mean_vert'},
    {size = 3, sigma = 0.25, amplitude = 1, normalize = false, mean_horz = 0.5, mean_vert = 0.5})
  width, height = planes('image.gaussian', width or size), planes('image.gaussian', height or size)
  sigmaH, sigmaV = finite('image.gaussian', sigmaH or sigma), finite('image.gaussian', sigmaV or sigma)
  amplitude = finite('image.gaussian', amplitude)
  local cx, cy = finite('image.gaussian', meanH) * width + 0.5, finite('image.gaussian', meanV) * height + 0.5
  local g = valueTensor('image.gaussian', {height, width}, function(k)
    local i, j = floor((k - 1) / width) + 1, (k - 1) % width + 1
    return amplitude * math.exp(-(math.pow((j - cx) / (sigmaH * width), 2) / 2 +
                                  math.pow((i - cy) / (sigmaV * height), 2) / 2))
  end)
  if normalize then g:div(g:sum()) end
  return g
end

-- torch.CmdLine: options with their defaults, set from the list parse() is
-- given: usually the global `arg`, the words after `--` on graphc's command
-- line (`graphc train model.lua -- -lr 0.1`), as `th model.lua -lr 0.1`.
local CmdLine = {}
CmdLine.__index = CmdLine
local function cmdNoop(self) return self end
CmdLine.text, CmdLine.log, CmdLine.addTime, CmdLine.silent = cmdNoop, cmdNoop, cmdNoop, cmdNoop
function CmdLine:option(name, default, help)
  if type(name) ~= 'string' or not name:find('^%-') then
    fail("cmd:option expects a name such as '-lr', got " .. describe(name))
  end
  local key = gsub(name, '^%-+', '')
  self.defaults[key] = default
  self.order[#self.order + 1] = key
  return self
end
function CmdLine:argument(name, help, default)
  return self:option('-' .. tostring(name), default, help)
end
function CmdLine:string(prefix) return prefix end
function CmdLine:parse(args)
  local opt = {}
  for _, key in ipairs(self.order) do opt[key] = self.defaults[key] end
  args = args or {}
  local i = 1
  while i <= #args do
    local key = type(args[i]) == 'string' and args[i]:match('^%-+(.+)$')
    local default = key and self.defaults[key]
    if default == nil then
      fail('unknown command-line option ' .. describe(args[i]))
    end
    if type(default) == 'boolean' then
      opt[key], i = not default, i + 1
    else
      local value = args[i + 1]
      if value == nil then fail('command-line option -' .. key .. ' needs a value') end
      if type(default) == 'number' then
        local n = tonumber(value)
        if n == nil then
          fail('command-line option -' .. key .. ' expects a number, got ' .. describe(value))
        end
        value = n
      end
      opt[key], i = value, i + 2
    end
  end
  return opt
end
torch.CmdLine = function() return setmetatable({defaults = {}, order = {}}, CmdLine) end
setmetatable(torch, {__index = function(_, k)
  fail(format("'torch.%s' is not supported in model files yet", tostring(k)), nil, nil, nil,
       'torch.' .. tostring(k))
end})

-- lapp (Penlight's pl.lapp): options declared by a usage text, read from
-- `arg`. `-r,--learningRate (default 0.05)  text` is a number (a string
-- when the default is not one; quotes are dropped), `--name (string)` one
-- that must be given, and a line without a type a flag (false unless given).
-- Values come as `--name v`, `--name=v` or `-r v`; the table is keyed by the
-- long name (the short one when there is none).
local function lapp(usage)
  if type(usage) ~= 'string' then fail('lapp expects its usage text') end
  local specs, byFlag, opt = {}, {}, {}
  for line in usage:gmatch('[^\n]+') do
    local short, long, rest = line:match('^%s*%-([%w_]),%s*%-%-([%w_%-]+)%s*(.*)$')
    if not short then long, rest = line:match('^%s*%-%-([%w_%-]+)%s*(.*)$') end
    if not long and not short then short, rest = line:match('^%s*%-([%w_])%s+(.*)$') end
    if long or short then
      local spec = {name = long or short}
      local default = rest:match('^%(%s*%a*%s*default%s+([^)]*)%)')
      local typed = rest:match('^%((%a+)%)')
      if default then
        default = gsub(gsub(default, '^%s+', ''), '%s+$', '')
        local quoted = default:match('^"(.*)"$') or default:match("^'(.*)'$")
        spec.value = quoted or tonumber(default) or default
        spec.number = not quoted and tonumber(default) ~= nil
      elseif typed then
        spec.required, spec.number = true, typed == 'number'
      else
        spec.flag, spec.value = true, false
      end
      specs[#specs + 1] = spec
      if long then byFlag['--' .. long] = spec end
      if short then byFlag['-' .. short] = spec end
    end
  end
  local args, given = G.arg or {}, {}
  local i = 1
  while i <= #args do
    local word, value = args[i], nil
    local name, inline = word:match('^(%-%-[%w_%-]+)=(.*)$')
    if name then word, value = name, inline end
    local spec = byFlag[word]
    if not spec then fail("lapp: unknown command-line option '" .. tostring(args[i]) .. "'") end
    if spec.flag then
      spec.value, i = true, i + 1
    else
      if value == nil then value, i = args[i + 1], i + 2 else i = i + 1 end
      if value == nil then fail('lapp: option ' .. word .. ' needs a value') end
      if spec.number then
        local n = tonumber(value)
        if n == nil then
          fail('lapp: option ' .. word .. " expects a number, got '" .. tostring(value) .. "'")
        end
        value = n
      end
      spec.value = value
    end
    given[spec] = true
  end
  for _, spec in ipairs(specs) do
    if spec.required and not given[spec] then
      fail('lapp: option --' .. spec.name .. ' is required')
    end
    opt[spec.name] = spec.value
  end
  return opt
end

local cutorch = {setDevice = noop, manualSeed = noop, manualSeedAll = noop,
                 getDeviceCount = function() return 1 end}
local empty = function() return {} end
local builtin = {
  nn = nn, cunn = nn, optim = optim, torch = torch, cutorch = cutorch, cudnn = cudnn,
  image = image, xlua = empty(), paths = empty(), ['pl.lapp'] = lapp,
}
local globalName = {nn = 'nn', optim = 'optim', torch = 'torch', cutorch = 'cutorch',
                    cudnn = 'cudnn', image = 'image', xlua = 'xlua', paths = 'paths'}

local loaded = {}
for k, v in pairs(builtin) do loaded[k] = v end
local forbidden = {io = true, os = true, debug = true, ffi = true, jit = true}

local function require(name)
  if type(name) ~= 'string' then
    fail('require expects one module name, e.g. require \'nn\', got ' .. describe(name))
  end
  if loaded[name] ~= nil then
    if globalName[name] then rawset(G, globalName[name], loaded[name]) end
    return loaded[name]
  end
  if forbidden[name] then
    fail(format("require '%s': not available in model files (they run sandboxed: no io, os " ..
                "or debug)", name))
  end
  local chunk = loadUserFile(name, true)
  local result = chunk(name)
  if result == nil then result = true end
  loaded[name] = result
  return result
end

local package = setmetatable({loaded = loaded, preload = {}, path = '', cpath = ''},
  {__index = function(_, k)
    fail(format("'package.%s' is not available in model files", tostring(k)))
  end})

G.nn, G.optim, G.torch, G.lapp = nn, optim, torch, lapp
G.require, G.package = require, package
G.dofile = function(path) return loadUserFile(path, false)() end
G.load = function(f, name)
  local parts = {}
  while true do
    local piece = f()
    if piece == nil or piece == '' then break end
    parts[#parts + 1] = piece
  end
  return loadstring(concat(parts), name or '=(load)')
end
G.print = function(...)
  local parts = {}
  for i = 1, select('#', ...) do parts[i] = tostring((select(i, ...))) end
  writeStderr(concat(parts, '\t') .. '\n')
end
G.loadfile = function(path) return loadUserFile(path, false) end
setmetatable(G, {__index = function(_, k)
  if forbidden[k] then
    fail(format("'%s' is not available in model files (they run sandboxed: no io, os or debug)",
                tostring(k)), nil, nil, nil, tostring(k))
  end
  return nil
end})

-- After the script: what it left behind, as plain arrays (LuaModel.cpp).
--   model:  kind, name, source, line, nargs, args..., ceil, (init kind or false, a, b) for
--           the weight and the bias, nchildren, children...
local function flatten(m, out, depth, what)
  if not isModule(m) then
    if isCriterion(m) then return fail(format("'%s' must be a module, got %s", what, describe(m)),
                                     m.__source, m.__line) end
    fail(format("'%s' must be a module, got %s", what, describe(m)))
  end
  if depth > MAX_DEPTH then
    fail(format('modules nested too deep (more than %d levels)', MAX_DEPTH), m.__source, m.__line)
  end
  out.count = out.count + 1
  if out.count > MAX_MODULES then
    fail(format('too many modules (more than %d)', MAX_MODULES), m.__source, m.__line)
  end
  local n = out.n
  out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] =
    m.__kind, m.__name, m.__source, m.__line, m.__nargs
  n = n + 5
  for i = 1, m.__nargs do
    local a = m.__args[i]
    if classOf(a) == TENSOR and a.__data then -- {'tensor', rank, sizes..., values...}
      local t = {'tensor', #a.__sizes}
      for _, d in ipairs(a.__sizes) do t[#t + 1] = d end
      for _, x in ipairs(a.__data) do t[#t + 1] = x end
      a = t
    end
    out[n + i] = a
  end
  n = n + m.__nargs
  local children = rawget(m, 'modules')
  local count = 0
  if type(children) == 'table' then count = #children end
  out[n + 1] = m.__ceil == true
  n = n + 1
  for _, name in ipairs({'weight', 'bias'}) do -- the script's initialisation, or false
    local t = rawget(m, name)
    local init = classOf(t) == TENSOR and t.__init
    out[n + 1], out[n + 2], out[n + 3] = init and init[1] or false, init and init[2] or 0,
                                         init and init[3] or 0
    n = n + 3
  end
  out[n + 1] = count
  out.n = n + 1
  for i = 1, count do
    flatten(children[i], out, depth + 1, format('modules[%d]', i))
  end
end

local function collect(nresults, r1, r2)
  local result = {}
  local model, what = r1, 'the returned value'
  if type(model) == 'function' then
    -- A builder, as fb.resnet's model files return: called with the options.
    local opt = rawget(G, 'opt')
    if opt == nil then opt = {} end
    model, r2 = model(opt)
    what = "the returned function's result"
  end
  if nresults == 0 or model == nil then model, what = rawget(G, 'model'), 'model' end
  if model == nil then model, what = rawget(G, 'net'), 'net' end
  if model ~= nil then
    if not isModule(model) or model.__kind ~= 'Sequential' then
      fail(format("'%s' must be an nn.Sequential, got %s", what, describe(model)),
           type(model) == 'table' and model.__source, type(model) == 'table' and model.__line,
           what)
    end
    local flat = {n = 0, count = 0}
    flatten(model, flat, 1, what)
    result[1], result[2] = flat, flat.n
  end
  local crit = rawget(G, 'criterion')
  if crit == nil and isCriterion(r2) then crit = r2 end
  if crit == nil and isCriterion(rawget(G, 'loss')) then crit = rawget(G, 'loss') end
  if crit ~= nil then
    if not isCriterion(crit) then
      fail("'criterion' must be a criterion such as nn.ClassNLLCriterion(), got " ..
           describe(crit), type(crit) == 'table' and crit.__source,
           type(crit) == 'table' and crit.__line, 'criterion')
    end
    if crit.__nargs > 0 then
      fail(format('%s expects no arguments, got %d', crit.__name, crit.__nargs), crit.__source,
           crit.__line, nil, crit.__name .. '(')
    end
    result[3], result[4], result[5] = crit.__kind, crit.__source, crit.__line
    -- Torch7's criteria average over the batch unless sizeAverage is false.
    result[12] = rawget(crit, 'sizeAverage') ~= false
  end
  local opt = rawget(G, 'optimizer')
  if opt ~= nil then
    if not optimizerName[opt] then
      fail("'optimizer' must be optim.sgd, optim.adagrad, optim.adam, optim.rmsprop, "
           .. "optim.adadelta or optim.nag, got " .. describe(opt),
           nil, nil, 'optimizer')
    end
    result[6] = optimizerName[opt]
    for _, name in ipairs({'config', 'optimState', 'optimConfig'}) do
      local cfg = rawget(G, name)
      if cfg ~= nil then
        if type(cfg) ~= 'table' or getmetatable(cfg) ~= nil then
          fail(format("'%s' must be a table such as {learningRate = 0.01}, got %s", name,
                      describe(cfg)), nil, nil, name)
        end
        if #cfg > 0 then
          fail(format("'%s' must only have named entries such as {learningRate = 0.01}", name),
               nil, nil, name)
        end
        local flat, n = {}, 0
        for k, v in pairs(cfg) do
          if type(k) ~= 'string' then
            fail(format("'%s' must only have named entries such as {learningRate = 0.01}", name),
                 nil, nil, name)
          end
          flat[n + 1], flat[n + 2] = k, v
          n = n + 2
        end
        result[7], result[8], result[9] = name, flat, n
        break
      end
    end
  end
  local input = rawget(G, 'input')
  if input ~= nil then
    local ok = type(input) == 'table' and #input >= 1 and #input <= 8
    local flat = {}
    if ok then
      local count = 0
      for _ in pairs(input) do count = count + 1 end
      ok = count == #input
      for i = 1, #input do
        local d = input[i]
        if type(d) ~= 'number' or d < 1 or d > 2147483647 or d ~= floor(d) then ok = false end
        flat[i] = d
      end
    end
    if not ok then
      fail("'input' must be a list of 1 to 8 positive integers such as {1, 32, 32}, got " ..
           describe(input), nil, nil, 'input')
    end
    result[10], result[11] = flat, #input
  end
  return result
end

return collect
)lua";
}

} // namespace graphc::frontend
