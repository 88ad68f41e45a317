require 'nn'
model = nn.Sequential()
for i = 1, 3 do
  model:add(nn.SpatialContrastiveNormalization(16))
end
