require 'nn'
model = nn.Sequential()
while true do
  model:size()
end
