package ui

import (
	"strings"

	"github.com/offline-loyalty/terminal/money"
	"github.com/offline-loyalty/terminal/ui/i18n"
)

// currencySymbols are the signs the screens write for the currencies they
// know; any other currency is written with its code.
var currencySymbols = map[string]string{"EUR": "€", "TRY": "₺", "USD": "$", "GBP": "£"}

// localMoney writes v minor units of cur as the language on screen writes
// money: "€1,234.50" in English, "1.234,50 ₺" in Turkish; a currency with
// no symbol here keeps its code ("1,234.50 CHF"). The digits are
// money.Format's, exact: only separators and the sign are placed here.
func localMoney(v int64, cur string) string {
	plain := money.Format(v, cur)
	sign := ""
	if rest, ok := strings.CutPrefix(plain, "-"); ok {
		sign, plain = "-", rest
	}
	units, frac, hasFrac := strings.Cut(plain, ".")
	group, point := ",", "."
	turkish := i18n.Current() == "tr"
	if turkish {
		group, point = ".", ","
	}
	var b strings.Builder
	for i, r := range units {
		if i > 0 && (len(units)-i)%3 == 0 {
			b.WriteString(group)
		}
		b.WriteRune(r)
	}
	num := b.String()
	if hasFrac {
		num += point + frac
	}
	sym, known := currencySymbols[cur]
	switch {
	case !known:
		return sign + num + " " + cur
	case turkish:
		return sign + num + " " + sym
	default:
		return sign + sym + num
	}
}
