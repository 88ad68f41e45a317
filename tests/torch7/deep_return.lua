-- A builder function returning the model, long stacks built in loops with
-- string keys, `and`/`or`, `#`, math and string formatting.
require 'nn'

local function build(opt)
  local model = nn.Sequential()
  model:add(nn.Reshape(1 * 28 * 28))
  local sizes = {}
  for i = 1, opt.depth do
    sizes[#sizes + 1] = math.max(8, math.floor(opt.width / i))
  end
  local prev = 28 * 28
  for i, n in ipairs(sizes) do
    model:add(nn.Linear(prev, n))
    model:add((i % 2 == 0) and nn.ReLU() or nn.Tanh())
    prev = n
  end
  model:add(nn.Linear(prev, opt.classes or 10))
  model:add(opt.softmax and nn.SoftMax() or nn.LogSoftMax())
  return model
end

local name = string.format('%s-%d', 'deep', 4)
assert(name == 'deep-4')
criterion = nn.ClassNLLCriterion()
optimizer = optim.adagrad
return build({depth = 4, width = 64, classes = 10})
