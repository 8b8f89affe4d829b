package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/offline-loyalty/terminal/agent/store"
)

// The day record's hand-written codec keeps the layout encoding/binary gave
// the struct, so day figures already on disk read the same.
func TestDayRecordLayout(t *testing.T) {
	var d dayRecord
	for i, v := range d.fields() {
		*v = int64(i+1) * -7919 // distinct, negative: sign and order both show
	}
	want, err := binary.Append(nil, binary.BigEndian, &d)
	if err != nil {
		t.Fatal(err)
	}
	got := d.encode()
	if !bytes.Equal(got, want) {
		t.Fatalf("encode differs from the binary layout:\n got %x\nwant %x", got, want)
	}
	back, err := decodeDay(want)
	if err != nil {
		t.Fatal(err)
	}
	if back != d {
		t.Fatalf("decode: got %+v, want %+v", back, d)
	}
	if _, err := decodeDay(want[:len(want)-1]); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("short record: err %v, want ErrCorrupt", err)
	}
	if zero, err := decodeDay(nil); err != nil || zero != (dayRecord{}) {
		t.Fatalf("no record: %+v, %v", zero, err)
	}
}

// TestDayFiguresUnderConcurrency: checkouts from many clients at once share
// commits, which store the day's figures once each (store.Tx.Deferred); the
// figures still count every checkout once, and a redeem refused among them
// counts for nothing.
func TestDayFiguresUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	a := openAgent(t)
	const clients, each = 16, 10
	cards := make([]string, clients)
	for i := range cards {
		cards[i] = fmt.Sprintf("40000000000%05d", i)
		if _, err := a.Enroll(ctx, EnrollRequest{Card: cards[i]}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var points atomic.Int64
	for c, card := range cards {
		wg.Go(func() {
			for i := range each {
				res, err := a.Earn(ctx, EarnRequest{Card: card, Amount: "12.50", Ref: fmt.Sprintf("R-%d-%d", c, i)})
				if err != nil {
					t.Error(err)
					return
				}
				points.Add(res.Points)
				// A redeem over the balance is refused among the others' earns.
				if _, err := a.Redeem(ctx, RedeemRequest{Card: card, Reward: "voucher5", Ref: fmt.Sprintf("X-%d-%d", c, i)}); !errors.Is(err, ErrInsufficientPoints) {
					t.Errorf("redeem over the balance: %v", err)
				}
			}
		})
	}
	wg.Wait()
	st, err := a.Stats("")
	if err != nil {
		t.Fatal(err)
	}
	if st.Checkouts != clients*each || st.MemberSpend != clients*each*1250 || st.PointsIssued != points.Load() ||
		st.UniqueMembers != clients || st.Enrollments != clients || st.PointsRedeemed != 0 {
		t.Fatalf("day figures: %d checkouts, spend %d, %d points issued, %d redeemed, %d unique members, %d enrollments; after %d earns of 12.50 (%d points) by %d new members",
			st.Checkouts, st.MemberSpend, st.PointsIssued, st.PointsRedeemed, st.UniqueMembers, st.Enrollments, clients*each, points.Load(), clients)
	}
}
