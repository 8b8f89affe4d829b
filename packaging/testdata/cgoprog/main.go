// Command cgoprog stands in for pos-agent in the packaging tests: a cgo
// program that goes through the same cross toolchain, link modes, signing
// and installer as the real one, in seconds instead of the ten minutes a
// cold cross build of Fyne takes. It prints the stamped version.
package main

/*
static int cgo_answer(void) { return 42; }
*/
import "C"

import (
	"fmt"

	"github.com/offline-loyalty/terminal/internal/buildstamp"
)

func main() {
	fmt.Println(buildstamp.Get(), int(C.cgo_answer()))
}
