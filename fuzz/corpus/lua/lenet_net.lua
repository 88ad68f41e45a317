-- LeNet in the style of the torch/demos train-on-mnist script: the network is
-- the global `net`, layers come from a table of options, and the script
-- prints what it built.
require 'torch'
require 'nn'
require 'image'
require 'xlua'
require 'paths'

torch.setdefaulttensortype('torch.FloatTensor')
torch.manualSeed(1)

local geometry = {28, 28}
local classes = {'1', '2', '3', '4', '5', '6', '7', '8', '9', '10'}

net = nn.Sequential()
net:add(nn.SpatialConvolutionMM(1, 6, 5, 5, 1, 1, 2, 2))
net:add(nn.Tanh())
net:add(nn.SpatialMaxPooling(2, 2, 2, 2):floor())
net:add(nn.SpatialConvolutionMM(6, 12, 5, 5))
net:add(nn.Tanh())
net:add(nn.SpatialMaxPooling(2, 2, 2, 2))
net:add(nn.Reshape(12 * 5 * 5))
net:add(nn.Linear(12 * 5 * 5, #classes * 4))
net:add(nn.Tanh())
net:add(nn.Linear(#classes * 4, #classes))
net:add(nn.LogSoftMax())

print(('<lenet> %d layers for %s images'):format(net:size(), table.concat(geometry, 'x')))

input = {1, geometry[1], geometry[2]}
criterion = nn.ClassNLLCriterion()
optimizer = optim.adagrad
optimState = {learningRate = 0.01, learningRateDecay = 1e-4}
