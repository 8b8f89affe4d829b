package main

import (
	"context"
	"log/slog"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/drivers/escpos"
	"github.com/offline-loyalty/terminal/drivers/serialport"
	"github.com/offline-loyalty/terminal/money"
)

// printSlips prints the loyalty slip of every earn committed after sequence
// last on the receipt printer at port, until ctx ends. A printer fault is
// logged and never holds up a checkout: the earn is already committed when
// its slip is printed.
func printSlips(ctx context.Context, a *agent.Agent, port string, last uint64, log *slog.Logger) {
	_ = a.FollowSlips(ctx, last, func(s agent.Slip) {
		// In the till's language (its settings), read at each slip: a
		// change of language shows on the next one.
		code, doc := a.Settings().Language, a.Rules()
		w, ok := slipWords[code]
		if !ok {
			code, w = "en", slipWords["en"]
		}
		named := func(id, name string) string {
			if n := doc.TierName(id, code); n != "" {
				return n
			}
			return name
		}
		slip := escpos.Slip{Store: s.Store, Time: s.Time, Member: s.Member, Card: s.Card, Earned: s.Earned, Balance: s.Balance,
			Expiring: s.Expiring, ExpiresOn: s.ExpiresOn, TierProgressPc: int(s.TierProgress / 10), Words: &w.Words}
		if s.NewTier != "" {
			slip.NewTier = named(s.NewTierID, s.NewTier)
		}
		if s.NextTier != "" {
			slip.NextTier = named(s.NextTierID, s.NextTier)
			slip.ToNext = money.Format(s.SpendToNext, s.Currency) + " " + s.Currency
		}
		for _, l := range s.Lines {
			label, ok := w.lines[l.Label]
			if !ok {
				label = doc.LineLabel(l.Label, code)
			}
			slip.Lines = append(slip.Lines, escpos.Line{Text: label, Points: l.Points})
		}
		if err := escpos.Print(serialport.Config{Path: port}, slip); err != nil {
			log.Warn("slip printer", "port", port, "err", err)
		}
	}, func(seq uint64, err error) {
		log.Warn("slip printer: no slip", "seq", seq, "err", err)
	})
}

// slipLanguage is a language's words for the slip: the slip's own, and the
// program's earn lines (a campaign's or tier's line is named by the rules).
type slipLanguage struct {
	escpos.Words
	lines map[string]string
}

// slipWords are the slip's words in the languages of the till's screens.
var slipWords = map[string]slipLanguage{
	"en": {Words: escpos.English},
	"tr": {Words: escpos.Words{Title: "SADAKAT FİŞİ", Member: "Üye: %s", Card: "Kart: %s", Earned: "Kazanılan puan",
		Balance: "Yeni bakiye", NewTier: "%s seviyesine hoş geldiniz!", Expire: "%d puanın süresi %s bitiyor",
		NextTier: "%[2]s için %[1]s daha"},
		lines: map[string]string{"base": "temel", "welcome back": "tekrar hoş geldiniz", "surprise": "sürpriz"}},
}
