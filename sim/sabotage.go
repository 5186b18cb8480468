package sim

// Sabotage disables safety mechanisms, one per field, for `mcsim scenario
// selftest`: each must then be caught by the invariant it exists for, or
// the checkers prove nothing. Only this package sets the machines'
// switches (DisableEpochFencing, DisableLeaseFence, DisableDeadline,
// DisableOwnClockCheck) and its own adapters' (the store's fencing, the
// map writer's own-clock check, the stall guard's threshold); TestSabotageOnlyInSim keeps it so.
type Sabotage struct {
	// NoGatewayFencing: the gateway accepts sessions of stale epochs.
	NoGatewayFencing bool
	// NoLeaseFence: coreapps accept commands of older lease epochs.
	NoLeaseFence bool
	// NoMapFencing: the store writes any master's shard map.
	NoMapFencing bool
	// NoOwnClockLease: a master whose lease ran out by its own clock goes
	// on acting as primary (and its map writer does not check).
	NoOwnClockLease bool
	// NoStallGuard: rule 4 never fires (a stalled master judges its
	// heartbeats by deadlines it slept through).
	NoStallGuard bool
	// NoDeadline: rule 1 never fires.
	NoDeadline bool
	// NoCallbackBackoff: the coreapps' webhook posters ignore
	// callback_backoff_delay_ms and retry a failed callback a millisecond
	// later (callbacks.go).
	NoCallbackBackoff bool
	// NoCallbackPersist: callback_persist is ignored: callbacks live in
	// the coreapp's memory only, so a crash loses those still pending.
	NoCallbackPersist bool
}

// Mechanism is one switch of Sabotage, by name.
type Mechanism struct {
	Name        string
	Description string
	Set         func(*Sabotage)
}

// Mechanisms are the switches selftest turns off one at a time.
func Mechanisms() []Mechanism {
	return []Mechanism{
		{"gateway-epoch-fencing", "the gateway accepts sessions of stale epochs", func(s *Sabotage) { s.NoGatewayFencing = true }},
		{"coreapp-lease-fence", "coreapps accept commands of older lease epochs", func(s *Sabotage) { s.NoLeaseFence = true }},
		{"store-map-fencing", "the store writes any master's shard map", func(s *Sabotage) { s.NoMapFencing = true }},
		{"own-clock-lease", "a master acts as primary after its lease ran out by its own clock", func(s *Sabotage) { s.NoOwnClockLease = true }},
		{"stall-guard", "rule 4 never fires: a stalled master judges by deadlines it slept through", func(s *Sabotage) { s.NoStallGuard = true }},
		{"rule1-deadline", "rule 1 never fires: no coreapp is ever declared unhealthy", func(s *Sabotage) { s.NoDeadline = true }},
	}
}
