package ui

import (
	"github.com/offline-loyalty/terminal/money"
	"github.com/offline-loyalty/terminal/ui/i18n"
)

// localMoney writes v minor units of cur as the language on screen writes
// money (money.Local).
func localMoney(v int64, cur string) string { return money.Local(v, cur, i18n.Current()) }
