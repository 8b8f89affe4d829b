package agent

import (
	"context"
	"errors"
	"fmt"
)

// ErrApproval is an operation a cashier may not make alone (the rules'
// approval limits, any balance adjustment): it needs the manager PIN in the
// request or a manager's call.
var ErrApproval = errors.New("needs a manager's approval")

type managerKey struct{}

// WithManager marks ctx as a manager's call, approved by who (the local
// API does for a manager's API token): what needs approval goes through.
func WithManager(ctx context.Context, who string) context.Context {
	return context.WithValue(ctx, managerKey{}, who)
}

// approver is who approves a call: the manager whose call ctx is, or the
// manager PIN when one is given (checked here, before the operation's
// transaction, and counted when wrong). "" when nobody does.
func (a *Agent) approver(ctx context.Context, pin string) (string, error) {
	if who, ok := ctx.Value(managerKey{}).(string); ok && who != "" {
		return who, nil
	}
	if pin == "" {
		return "", nil
	}
	if err := a.CheckManagerPIN(pin); err != nil {
		return "", err
	}
	return "manager PIN", nil
}

// approve lets through what why (nil: nothing) says needs a manager when
// approver approved it, logs who did, and returns who to record on the
// event ("" when nothing needed approval).
func (o *op) approve(approver string, why error) (string, error) {
	if why == nil {
		return "", nil
	}
	if approver == "" {
		return "", fmt.Errorf("%w: %v", ErrApproval, why)
	}
	o.a.log.Info("manager approved", "why", why.Error(), "by", approver)
	return approver, nil
}
