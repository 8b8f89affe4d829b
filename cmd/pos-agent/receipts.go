package main

import (
	"context"
	"log/slog"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/drivers/escpos"
	"github.com/offline-loyalty/terminal/drivers/serialport"
	"github.com/offline-loyalty/terminal/ledger"
)

// slipBatch is how many new events the slip printer reads at a time.
const slipBatch = 100

// printSlips prints the loyalty slip of every earn committed after sequence
// last — from the app or from the POS — on the receipt printer at port, until
// ctx ends. A printer fault is logged and never holds up a checkout: the earn is
// already committed when its slip is printed.
func printSlips(ctx context.Context, a *agent.Agent, port string, last uint64, log *slog.Logger) {
	notices, stop := a.Watch()
	defer stop()
	for {
		for {
			evs, err := a.OutboxAfter(last, slipBatch)
			if err != nil {
				log.Warn("slip printer: reading the ledger", "err", err)
				break
			}
			for _, b := range evs {
				e, err := ledger.Decode(b)
				if err != nil {
					log.Warn("slip printer: event", "err", err)
					continue
				}
				last = e.Seq
				if e.Type == ledger.Earn {
					printSlip(ctx, a, e, port, log)
				}
			}
			if len(evs) < slipBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-notices:
		}
	}
}

func printSlip(ctx context.Context, a *agent.Agent, e ledger.Event, port string, log *slog.Logger) {
	m, err := a.Member(ctx, e.Card)
	if err != nil {
		log.Warn("slip printer: member", "card", cardnum.Mask(e.Card), "err", err)
		return
	}
	slip := escpos.Slip{Store: a.Identity().Store, Time: e.Time, Member: m.Name, Card: e.Card, Earned: e.Points, Balance: m.Balance}
	for _, l := range e.Lines {
		slip.Lines = append(slip.Lines, escpos.Line{Text: l.Label, Points: l.Points})
	}
	if err := escpos.Print(serialport.Config{Path: port}, slip); err != nil {
		log.Warn("slip printer", "port", port, "err", err)
	}
}
