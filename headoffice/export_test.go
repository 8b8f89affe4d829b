package headoffice

// SweepConsole runs the sweep of ended sessions and old sign-in failures
// now, for tests.
var SweepConsole = (*Office).sweepConsole
