require 'nn'
local model = nn.Sequential()
model:add(nn.Linear(10, 5))
