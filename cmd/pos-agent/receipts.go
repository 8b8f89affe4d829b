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
		slip := escpos.Slip{Store: s.Store, Time: s.Time, Member: s.Member, Card: s.Card, Earned: s.Earned, Balance: s.Balance,
			NewTier: s.NewTier, Expiring: s.Expiring, ExpiresOn: s.ExpiresOn, NextTier: s.NextTier,
			TierProgressPc: int(s.TierProgress / 10)}
		if s.NextTier != "" {
			slip.ToNext = money.Format(s.SpendToNext, s.Currency) + " " + s.Currency
		}
		for _, l := range s.Lines {
			slip.Lines = append(slip.Lines, escpos.Line{Text: l.Label, Points: l.Points})
		}
		if err := escpos.Print(serialport.Config{Path: port}, slip); err != nil {
			log.Warn("slip printer", "port", port, "err", err)
		}
	}, func(seq uint64, err error) {
		log.Warn("slip printer: no slip", "seq", seq, "err", err)
	})
}
