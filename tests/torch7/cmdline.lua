-- The head of a torch/demos-style training script: options from
-- torch.CmdLine (the defaults, or what follows `--` on graphc's command
-- line: graphc train cmdline.lua -- -model mlp -hidden 16), then a model
-- chosen by name.
require 'torch'
require 'nn'
require 'optim'

local cmd = torch.CmdLine()
cmd:text()
cmd:text('Train a classifier on MNIST')
cmd:text()
cmd:text('Options:')
cmd:option('-model', 'convnet', 'type of model: linear | mlp | convnet')
cmd:option('-hidden', 32, 'hidden units of the mlp')
cmd:option('-learningRate', 0.05, 'learning rate at t=0')
cmd:option('-momentum', 0, 'momentum (SGD only)')
cmd:option('-cuda', false, 'use CUDA')
cmd:text()
local opt = cmd:parse(arg or {})

-- A list handed to parse works too.
local other = cmd:parse({'-model', 'mlp', '-hidden', '16', '-cuda'})
assert(other.model == 'mlp' and other.hidden == 16 and other.cuda == true)

local model = nn.Sequential()
if opt.model == 'linear' then
  model:add(nn.Reshape(28 * 28))
  model:add(nn.Linear(28 * 28, 10))
elseif opt.model == 'mlp' then
  model:add(nn.Reshape(28 * 28))
  model:add(nn.Linear(28 * 28, opt.hidden))
  model:add(nn.Tanh())
  model:add(nn.Linear(opt.hidden, 10))
elseif opt.model == 'convnet' then
  model:add(nn.SpatialConvolutionMM(1, 8, 5, 5))
  model:add(nn.Tanh())
  model:add(nn.SpatialMaxPooling(3, 3, 3, 3))
  model:add(nn.View(8 * 8 * 8))
  model:add(nn.Linear(8 * 8 * 8, opt.hidden))
  model:add(nn.Tanh())
  model:add(nn.Linear(opt.hidden, 10))
else
  error('unknown -model ' .. opt.model)
end
model:add(nn.LogSoftMax())
if opt.cuda then model:cuda() end

input = {1, 28, 28}
criterion = nn.ClassNLLCriterion()
optimizer = optim.sgd
config = {learningRate = opt.learningRate, momentum = opt.momentum}
return model
