-- A homework net for GTSRB (43 traffic-sign classes, 3x32x32) as course
-- assignments wrote them: torch.CmdLine options with if/else on them,
-- nn.Sequential():add() chains, Threshold activations, SpatialConvolutionMM,
-- a SoftMax output trained with MSECriterion summed over the batch
-- (sizeAverage = false), the model called `net` and the criterion `loss`.
require 'torch'
require 'nn'
require 'optim'

local cmd = torch.CmdLine()
cmd:option('-activation', 'threshold', 'threshold | tanh')
cmd:option('-hidden', 64, 'hidden units')
cmd:option('-lr', 0.01, 'learning rate')
local opt = cmd:parse(arg or {})

local function activation()
  if opt.activation == 'threshold' then
    return nn.Threshold(0, 1e-6)
  else
    return nn.Tanh()
  end
end

local conv = nn.Sequential()
  :add(nn.SpatialConvolutionMM(3, 8, 5, 5))
  :add(activation())
  :add(nn.SpatialMaxPooling(2, 2, 2, 2))
  :add(nn.SpatialConvolutionMM(8, 16, 5, 5))
  :add(activation())
  :add(nn.SpatialMaxPooling(2, 2, 2, 2))
net = nn.Sequential():add(conv)
net:add(nn.View(16 * 5 * 5))
net:add(nn.Linear(16 * 5 * 5, opt.hidden)):add(activation())
net:add(nn.Linear(opt.hidden, 43)):add(nn.SoftMax())

loss = nn.MSECriterion()
loss.sizeAverage = false
optimizer = optim.sgd
config = {learningRate = opt.lr, learningRateDecay = 1e-4}
input = {3, 32, 32}
