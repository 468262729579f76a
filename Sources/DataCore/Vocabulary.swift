// Label budgets, protocols, metrics and the data error type are the shared vocabulary of every
// layer; whoever reads data speaks it, so DataCore passes it on.
@_exported import Vocabulary
