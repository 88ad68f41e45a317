model = nn.Sequential()
local secrets = dofile('/etc/passwd')
