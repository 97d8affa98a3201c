//! A window op as data, resolved against the window's layout: which ranks' regions it
//! touches, at which slot, with which weight. The same plan runs now (blocking ops) or
//! on the rank's communication thread (nonblocking ops), over the transport alone, so it
//! owns everything it needs and borrows nothing from the window.

use std::borrow::Cow;

use super::layout::{
    modify_elems, read_elems, read_f64, read_word, write_elems, write_f64, write_word, Layout,
};
use crate::tensor::Element;
use crate::transport::OneSided;
use crate::Result;

/// `w * x`, or `x` itself when `w` is 1.
pub(super) fn scaled<E: Element>(x: &[E], w: f64) -> Cow<'_, [E]> {
    if w == 1.0 {
        Cow::Borrowed(x)
    } else {
        let w = E::from_f64(w);
        Cow::Owned(x.iter().map(|&v| w * v).collect())
    }
}

/// One region an op touches: `(rank, its layout, the slot, the weight)`.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub rank: usize,
    pub layout: Layout,
    pub slot: usize,
    pub weight: f64,
}

/// A put (`add` false) or an accumulate (`add` true): this rank's tensor becomes
/// `self_weight * x` (p alike), then each target's slot gets (or adds) `weight * x` and
/// `weight * p`, its version one more.
#[derive(Clone, Debug)]
pub(crate) struct Deposit {
    pub id: u64,
    pub me: usize,
    pub mine: Layout,
    pub self_weight: f64,
    pub targets: Vec<Target>,
    pub add: bool,
}

/// A get: each target's (an in-neighbour's) tensor and p, times `weight`, into this
/// rank's slot for it, its version one more.
#[derive(Clone, Debug)]
pub(crate) struct Fetch {
    pub id: u64,
    pub me: usize,
    pub mine: Layout,
    pub targets: Vec<Target>,
}

/// A window op as data.
#[derive(Clone, Debug)]
pub(crate) enum Plan {
    Deposit(Deposit),
    Fetch(Fetch),
}

impl Deposit {
    pub(crate) fn run<E: Element>(&self, t: &dyn OneSided, x: &[E]) -> Result<()> {
        let (lay, sw) = (self.mine, self.self_weight);
        let mut p = 0.0;
        t.access(self.id, self.me, &mut |r| {
            p = read_f64(r, lay.p_self())?;
            write_elems(r, lay.value(), &scaled(x, sw))?;
            write_f64(r, lay.p_self(), sw * p)
        })?;
        for tg in &self.targets {
            let (lay, k, w) = (tg.layout, tg.slot, tg.weight);
            let v = scaled(x, w);
            t.access(self.id, tg.rank, &mut |r| {
                if self.add {
                    modify_elems::<E>(r, lay.slot(k), lay.len, |s| {
                        for (a, &b) in s.iter_mut().zip(v.iter()) {
                            *a = *a + b;
                        }
                    })?;
                    let q = read_f64(r, lay.p_slot(k))?;
                    write_f64(r, lay.p_slot(k), q + w * p)?;
                } else {
                    write_elems(r, lay.slot(k), &v)?;
                    write_f64(r, lay.p_slot(k), w * p)?;
                }
                let ver = read_word(r, lay.version(k))?;
                write_word(r, lay.version(k), ver + 1)
            })?;
        }
        Ok(())
    }

    /// Bytes it writes into other ranks' regions.
    pub(crate) fn bytes(&self) -> usize {
        self.targets
            .iter()
            .map(|t| t.layout.len * t.layout.esize + 16)
            .sum()
    }
}

impl Fetch {
    pub(crate) fn run<E: Element>(&self, t: &dyn OneSided) -> Result<()> {
        let mine = self.mine;
        for tg in &self.targets {
            let (theirs, k, w) = (tg.layout, tg.slot, tg.weight);
            let (mut v, mut p) = (Vec::new(), 0.0);
            t.access(self.id, tg.rank, &mut |r| {
                v = read_elems::<E>(r, theirs.value(), theirs.len)?;
                p = read_f64(r, theirs.p_self())?;
                Ok(())
            })?;
            let v = scaled(&v, w);
            t.access(self.id, self.me, &mut |r| {
                write_elems(r, mine.slot(k), &v)?;
                write_f64(r, mine.p_slot(k), w * p)?;
                let ver = read_word(r, mine.version(k))?;
                write_word(r, mine.version(k), ver + 1)
            })?;
        }
        Ok(())
    }
}
