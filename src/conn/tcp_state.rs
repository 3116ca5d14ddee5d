//! IPVS's TCP connection states and transitions
//! (net/netfilter/ipvs/ip_vs_proto_tcp.c: `tcp_states`, `tcp_timeouts`,
//! `tcp_state_idx`, `set_tcp_state`; ../shared/IPVS-SPEC.md section 3).
//!
//! The director sees a TCP connection as IPVS does: not a full TCP state
//! machine, but a table indexed by (direction, flag class, current state).
//! The flag class is the first of RST, SYN, FIN, ACK present in the
//! segment; a segment with none of them moves the connection to CLOSE.
//! Direction is INPUT (client to director), OUTPUT (real server to client,
//! seen only with NAT) or INPUT-ONLY: a DR or TUN connection, whose replies
//! bypass the director, uses the INPUT-ONLY table. After every segment the
//! connection's timeout becomes the new state's (`timeout_s`).
//! `secure_tcp`'s alternative tables are not implemented.

/// A TCP connection's state, in IPVS's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    None = 0,
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait = 4,
    TimeWait = 5,
    Close = 6,
    CloseWait = 7,
    LastAck = 8,
    Listen = 9,
    SynAck = 10,
}

use TcpState::*;

impl TcpState {
    /// Every state, by index.
    pub const ALL: [TcpState; 11] = [
        None,
        Established,
        SynSent,
        SynRecv,
        FinWait,
        TimeWait,
        Close,
        CloseWait,
        LastAck,
        Listen,
        SynAck,
    ];

    /// The state with IPVS's index `i` (as sync messages carry it).
    pub fn from_index(i: u16) -> Option<TcpState> {
        Self::ALL.get(i as usize).copied()
    }

    /// IPVS's name, as `ipvsadm -lc` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            None => "NONE",
            Established => "ESTABLISHED",
            SynSent => "SYN_SENT",
            SynRecv => "SYN_RECV",
            FinWait => "FIN_WAIT",
            TimeWait => "TIME_WAIT",
            Close => "CLOSE",
            CloseWait => "CLOSE_WAIT",
            LastAck => "LAST_ACK",
            Listen => "LISTEN",
            SynAck => "SYNACK",
        }
    }

    /// IPVS's default timeout for the state, in seconds (`tcp_timeouts`).
    pub const fn timeout_s(self) -> u32 {
        match self {
            None => 2,
            Established => 15 * 60,
            SynSent => 2 * 60,
            SynRecv => 60,
            FinWait => 2 * 60,
            TimeWait => 2 * 60,
            Close => 10,
            CloseWait => 60,
            LastAck => 30,
            Listen => 2 * 60,
            SynAck => 2 * 60,
        }
    }

    /// Whether IPVS counts a connection in this state as active (only
    /// ESTABLISHED; every other state is inactive).
    pub const fn is_active(self) -> bool {
        matches!(self, Established)
    }
}

/// Which way a segment goes, as the state table sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to director.
    Input,
    /// Real server to client through the director (NAT).
    Output,
    /// Client to director on a connection whose replies bypass the
    /// director (DR, TUN): IPVS's NOOUTPUT connections.
    InputOnly,
}

/// The flag class of a segment: the first of RST, SYN, FIN, ACK it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagClass {
    Syn = 0,
    Fin = 1,
    Ack = 2,
    Rst = 3,
}

impl FlagClass {
    /// From the TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10);
    /// `None` when the segment has none of the four.
    pub fn of(flags: u8) -> Option<FlagClass> {
        if flags & 0x04 != 0 {
            Some(FlagClass::Rst)
        } else if flags & 0x02 != 0 {
            Some(FlagClass::Syn)
        } else if flags & 0x01 != 0 {
            Some(FlagClass::Fin)
        } else if flags & 0x10 != 0 {
            Some(FlagClass::Ack)
        } else {
            Option::None
        }
    }
}

// Rows: syn, fin, ack, rst; columns: the current state
// NO ES SS SR FW TW CL CW LA LI SA (ip_vs_proto_tcp.c `tcp_states`).
type Table = [[TcpState; 11]; 4];

// The spec's abbreviations, so the tables read as it prints them (no
// transition leads to NONE or SYNACK).
const ES: TcpState = Established;
const SS: TcpState = SynSent;
const SR: TcpState = SynRecv;
const FW: TcpState = FinWait;
const TW: TcpState = TimeWait;
const CL: TcpState = Close;
const CW: TcpState = CloseWait;
const LA: TcpState = LastAck;
const LI: TcpState = Listen;

#[rustfmt::skip]
const INPUT: Table = [
    //        NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    /* fin */ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
    /* ack */ [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
];

#[rustfmt::skip]
const OUTPUT: Table = [
    //        NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    /* syn */ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
    /* fin */ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    /* rst */ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
];

#[rustfmt::skip]
const INPUT_ONLY: Table = [
    //        NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    /* fin */ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    /* ack */ [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/// The state after a segment with TCP `flags` going `dir` on a
/// connection in `state`.
#[inline(always)]
pub fn next(state: TcpState, dir: Direction, flags: u8) -> TcpState {
    let Some(class) = FlagClass::of(flags) else {
        return Close;
    };
    let table = match dir {
        Direction::Input => &INPUT,
        Direction::Output => &OUTPUT,
        Direction::InputOnly => &INPUT_ONLY,
    };
    table[class as usize][state as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const FIN: u8 = 0x01;
    const RST: u8 = 0x04;
    const PSH: u8 = 0x08;

    fn run(dir_flags: &[(Direction, u8)]) -> Vec<TcpState> {
        let mut s = None;
        dir_flags
            .iter()
            .map(|&(d, f)| {
                s = next(s, d, f);
                s
            })
            .collect()
    }

    /// A NAT connection's life as the director sees both directions.
    #[test]
    fn nat_handshake_data_and_close() {
        use Direction::*;
        let states = run(&[
            (Input, SYN),
            (Output, SYN | ACK),
            (Input, ACK),
            (Input, ACK | PSH),
            (Output, ACK),
            (Input, FIN | ACK),
            (Output, FIN | ACK),
            (Input, ACK),
        ]);
        assert_eq!(
            states,
            vec![
                SynRecv,
                SynRecv,
                Established,
                Established,
                Established,
                CloseWait,
                TimeWait,
                TimeWait
            ]
        );
    }

    /// A DR connection: only the client's segments, INPUT-ONLY table.
    #[test]
    fn dr_handshake_and_close() {
        use Direction::InputOnly as I;
        let states = run(&[(I, SYN), (I, ACK), (I, FIN | ACK), (I, ACK)]);
        assert_eq!(states, vec![SynRecv, Established, FinWait, FinWait]);
    }

    #[test]
    fn flag_priority_and_flagless_segments() {
        assert_eq!(FlagClass::of(SYN | RST), Some(FlagClass::Rst));
        assert_eq!(FlagClass::of(SYN | FIN), Some(FlagClass::Syn));
        assert_eq!(FlagClass::of(FIN | ACK), Some(FlagClass::Fin));
        assert_eq!(FlagClass::of(PSH), Option::None);
        assert_eq!(next(Established, Direction::Input, PSH), Close);
        assert_eq!(next(Established, Direction::Input, RST), Close);
        // INPUT and INPUT-ONLY differ: a client FIN on an established
        // connection.
        assert_eq!(next(Established, Direction::Input, FIN), CloseWait);
        assert_eq!(next(Established, Direction::InputOnly, FIN), FinWait);
        // and a RST on SYNACK.
        assert_eq!(next(SynAck, Direction::Input, RST), SynRecv);
        assert_eq!(next(SynAck, Direction::InputOnly, RST), Close);
    }

    #[test]
    fn indices_names_and_timeouts() {
        for (i, s) in TcpState::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
            assert_eq!(TcpState::from_index(i as u16), Some(*s));
        }
        assert_eq!(TcpState::from_index(11), Option::None);
        assert_eq!(Established.timeout_s(), 900);
        assert_eq!(SynRecv.timeout_s(), 60);
        assert_eq!(TimeWait.timeout_s(), 120);
        assert_eq!(Close.timeout_s(), 10);
        assert_eq!(SynAck.name(), "SYNACK");
        assert!(Established.is_active() && !SynRecv.is_active());
    }

    /// Every cell of the three tables, against IPVS-SPEC.md section 3
    /// written out as text.
    #[test]
    fn tables_match_the_spec() {
        let spec = "
            INPUT
            syn SR ES ES SR SR SR SR SR SR SR SR
            fin CL CW SS TW TW TW CL CW LA LI TW
            ack CL ES SS ES FW TW CL CW CL LI ES
            rst CL CL CL SR CL CL CL CL LA LI SR
            OUTPUT
            syn SS ES SS SR SS SS SS SS SS LI SR
            fin TW FW SS TW FW TW CL TW LA LI TW
            ack ES ES SS ES FW TW CL CW LA ES ES
            rst CL CL SS CL CL TW CL CL CL CL CL
            INPUT-ONLY
            syn SR ES ES SR SR SR SR SR SR SR SR
            fin CL FW SS TW FW TW CL CW LA LI TW
            ack CL ES SS ES FW TW CL CW CL LI ES
            rst CL CL CL SR CL CL CL CL LA LI CL";
        let abbr = |a: &str| match a {
            "NO" => None,
            "ES" => Established,
            "SS" => SynSent,
            "SR" => SynRecv,
            "FW" => FinWait,
            "TW" => TimeWait,
            "CL" => Close,
            "CW" => CloseWait,
            "LA" => LastAck,
            "LI" => Listen,
            "SA" => SynAck,
            _ => panic!("{a}"),
        };
        let mut dir = Direction::Input;
        let mut cells = 0;
        for line in spec.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut w = line.split_whitespace();
            let first = w.next().unwrap();
            let flags = match first {
                "INPUT" => {
                    dir = Direction::Input;
                    continue;
                }
                "OUTPUT" => {
                    dir = Direction::Output;
                    continue;
                }
                "INPUT-ONLY" => {
                    dir = Direction::InputOnly;
                    continue;
                }
                "syn" => SYN,
                "fin" => FIN,
                "ack" => ACK,
                "rst" => RST,
                _ => panic!("{first}"),
            };
            for (state, want) in TcpState::ALL.iter().zip(w) {
                assert_eq!(
                    next(*state, dir, flags),
                    abbr(want),
                    "{dir:?} {first} {state:?}"
                );
                cells += 1;
            }
        }
        assert_eq!(cells, 3 * 4 * 11);
    }
}
