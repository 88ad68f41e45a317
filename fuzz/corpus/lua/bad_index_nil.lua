require 'nn'
local opt = {}
model = nn.Sequential()
model:add(nn.Linear(opt.inputs.size, 10))
