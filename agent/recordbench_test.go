package agent

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/rules"
)

// BenchmarkRecordCodecs measures a read and a rewrite (decode, then
// encode) of a member record in use a year and of its checkout's record,
// in the binary form the agent stores and in encoding/json, the standard
// alternative, in one run, and prints JSON's cost and size as ratios. Every
// earn reads and rewrites one of each.
func BenchmarkRecordCodecs(b *testing.B) {
	b.Run("member", func(b *testing.B) { benchCodecs(b, livedMember()) })
	b.Run("checkout", func(b *testing.B) { benchCodecs(b, livedCheckout()) })
}

func benchCodecs[T any, P binaryRecord[T]](b *testing.B, rec P) {
	bin, err := rec.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	js, err := json.Marshal(rec)
	if err != nil {
		b.Fatal(err)
	}
	var binT, jsonT time.Duration
	for b.Loop() {
		t0 := time.Now()
		v := P(new(T))
		if err := v.UnmarshalBinary(bin); err != nil {
			b.Fatal(err)
		}
		if _, err := v.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		w := P(new(T))
		if err := json.Unmarshal(js, w); err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(w); err != nil {
			b.Fatal(err)
		}
		binT += t1.Sub(t0)
		jsonT += time.Since(t1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(binT.Nanoseconds())/n, "binary-ns")
	b.ReportMetric(float64(jsonT.Nanoseconds())/n, "json-ns")
	b.ReportMetric(float64(jsonT)/float64(binT), "json-vs-binary")
	b.ReportMetric(float64(len(js))/float64(len(bin)), "json-vs-binary-bytes")
}

// livedMember is a member a year into the program: a card, contact
// details, twelve months of lots and spend.
func livedMember() *memberRecord {
	at := time.Date(2026, 11, 28, 17, 4, 5, 0, time.UTC)
	m := &memberRecord{
		ID: "M-8f3a61c2d94e", Name: "Ayşe Yılmaz", Email: "ayse.yilmaz@example.com", Phone: "+905321234567", Consent: true,
		Tier: "silver", Status: "active", Cards: []string{"6006491234567890"},
		Base: 4120, BaseAt: at.Add(-48 * time.Hour), AsOfSeq: 93411, Pending: 210, Balance: 4330,
		Spend12m: 1482050, Lifetime: 2290075, LastVisit: at, Enrolled: at.AddDate(-1, 0, 0),
		Checkouts: 143, LastDay: "2026-11-28", BurnDay: "2026-11-20", BurnedDay: 500,
		RedeemOpen: at.Add(-200 * time.Hour), Birthday: "04-17",
		Lots: rules.Lots{}, Months: map[string]int64{}, TierSince: at.AddDate(0, -5, 0),
	}
	for i := range 12 {
		month := fmt.Sprintf("%04d-%02d", 2025+(i+11)/12, (i+11)%12+1)
		m.Lots[month] = int64(200 + 37*i)
		m.Months[month] = int64(98000 + 4125*i)
	}
	return m
}

// livedCheckout is an earn's checkout with its answer kept for retries.
func livedCheckout() *checkoutRecord {
	return &checkoutRecord{
		Ref: "POS-17-20261128-000412", Member: "M-8f3a61c2d94e", Card: "6006491234567890",
		EarnEvent: "T-0042-3-93412", Day: "2026-11-28", Time: time.Date(2026, 11, 28, 17, 4, 5, 0, time.UTC),
		Amount: 4790, Earned: 96, Burned: 0,
		Results: map[string]json.RawMessage{"earn": json.RawMessage(`{"ref":"POS-17-20261128-000412","member":"M-8f3a61c2d94e","points":96,"balance":4426,"tier":"silver","lines":[{"label":"Base: 1 point per 1.00","points":48},{"label":"Silver tier x2","points":48}]}`)},
	}
}
