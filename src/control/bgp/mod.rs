//! `[bgp]`: announcing the virtual addresses through a supervised BGP
//! speaker (BIRD 2) on the kernel side of an exception path.

pub mod bird;
pub mod speaker;
