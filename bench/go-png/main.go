// go-png re-encodes a PNG the way the old Go server's lossless mode did:
// decode with image/png, encode with png.BestCompression. stdin -> stdout.
package main

import (
	"bufio"
	"image/png"
	"os"
)

func main() {
	img, err := png.Decode(bufio.NewReader(os.Stdin))
	if err != nil {
		os.Stderr.WriteString("go-png: " + err.Error() + "\n")
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(w, img); err != nil {
		os.Stderr.WriteString("go-png: " + err.Error() + "\n")
		os.Exit(1)
	}
	if err := w.Flush(); err != nil {
		os.Exit(1)
	}
}
