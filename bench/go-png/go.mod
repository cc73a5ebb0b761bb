module compressor/bench/go-png

go 1.19
