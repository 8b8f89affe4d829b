package hqbolt

import (
	"testing"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/storetest"
)

// TestStore: the embedded store behaves as every store must.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) headoffice.Store { return open(t, t.TempDir()) })
}
