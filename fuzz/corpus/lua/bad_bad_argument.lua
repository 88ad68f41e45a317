require 'nn'
model = nn.Sequential()
local n = 10
  model:add(nn.Linear(n, n - 20))
