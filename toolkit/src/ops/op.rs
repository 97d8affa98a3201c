//! The one list of ops. Every collective's identity (its name, its wire code, what a
//! differing tag means) is written here once, and everything else derives from it: the
//! names in messages and timeline spans, the consistency check's wording, the codes the
//! `mpi` transport ships. Adding an op is one line here; a code is never reused.

use std::fmt;

use crate::transport::OpId;

macro_rules! ops {
    ($($(#[$doc:meta])* $op:ident = $code:literal, $name:literal, $tag:literal;)*) => {
        /// Which collective a call is; ranks must agree on it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Op {
            $($(#[$doc])* $op,)*
        }

        impl Op {
            /// Every op, in code order.
            pub const ALL: &'static [Op] = &[$(Op::$op),*];

            /// The op's name, as users call it (`"neighbor_allreduce"`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Op::$op => $name,)*
                }
            }

            /// A `tracing` span named after the op (the timeline's span for one call).
            pub fn span(self) -> tracing::Span {
                match self {
                    $(Op::$op => tracing::trace_span!($name),)*
                }
            }
        }

        impl OpId for Op {
            fn code(self) -> u16 {
                match self {
                    $(Op::$op => $code,)*
                }
            }

            fn from_code(code: u16) -> Option<Op> {
                match code {
                    $($code => Some(Op::$op),)*
                    _ => None,
                }
            }

            fn tag_meaning(self) -> &'static str {
                match self {
                    $(Op::$op => $tag,)*
                }
            }
        }
    };
}

ops! {
    /// `barrier`
    Barrier = 1, "barrier", "different options";
    /// `broadcast`
    Broadcast = 2, "broadcast", "different options";
    /// `allreduce`
    Allreduce = 3, "allreduce", "a different reduction";
    /// `allgather`
    Allgather = 4, "allgather", "different options";
    /// `neighbor_allreduce` (static topology or per-call weights)
    NeighborAllreduce = 5, "neighbor_allreduce", "a different topology";
    /// `neighbor_allgather`
    NeighborAllgather = 6, "neighbor_allgather", "a different topology";
    /// `pair_gossip`
    PairGossip = 7, "pair_gossip", "different options";
    /// `set_topology` (and `set_machine_topology`)
    SetTopology = 8, "set_topology", "a different topology";
    /// `hierarchical_neighbor_allreduce`
    HierarchicalNeighborAllreduce = 9, "hierarchical_neighbor_allreduce", "a different topology";
    /// `gather_bytes` (e.g. metrics to rank 0)
    Gather = 10, "gather", "different options";
    /// `win_create` (collective)
    WinCreate = 11, "win_create", "a different window or topology";
    /// `win_free` (collective)
    WinFree = 12, "win_free", "a different window";
    /// `neighbor_win_put` (one-sided: never matched across ranks)
    WinPut = 13, "neighbor_win_put", "a different window";
    /// `neighbor_win_accumulate` (one-sided)
    WinAccumulate = 14, "neighbor_win_accumulate", "a different window";
    /// `neighbor_win_get` (one-sided)
    WinGet = 15, "neighbor_win_get", "a different window";
    /// `win_update` (local to a rank's window)
    WinUpdate = 16, "win_update", "a different window";
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut codes: Vec<u16> = Op::ALL.iter().map(|o| o.code()).collect();
        for &op in Op::ALL {
            assert_eq!(Op::from_code(op.code()), Some(op));
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Op::ALL.len());
        assert_eq!(Op::from_code(0), None);
        assert_eq!(Op::from_code(999), None);
    }
}
