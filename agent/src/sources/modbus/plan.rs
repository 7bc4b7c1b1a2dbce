//! Block planning: which requests one poll sends.
//!
//! Values of one slave and table that lie close together are read in one request, so they
//! share one instant (and the bus carries fewer frames). A block never exceeds the
//! protocol's (or the device's) limit, and bridges a gap of unmapped registers only up to
//! the configured fill: some devices refuse a read that spans addresses they do not map,
//! and `max_gap_registers = 0` is the way out for those.

use eitwatch_config::agent_config::RegisterTable;

/// Where one configured value lies: what the planner needs of a register map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Slave (unit) id.
    pub slave: u8,
    /// Table.
    pub table: RegisterTable,
    /// Protocol (zero-based) address of its first register or bit.
    pub address: u16,
    /// Registers (or bits) it occupies.
    pub width: u16,
}

/// How large requests may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Registers per request (≤ 125).
    pub max_registers: u16,
    /// Coils or discrete inputs per request (≤ 2000).
    pub max_bits: u16,
    /// Unmapped registers a request may read through.
    pub max_gap_registers: u16,
    /// Unmapped bits a request may read through.
    pub max_gap_bits: u16,
}

impl Limits {
    fn for_table(&self, table: RegisterTable) -> (u32, u32) {
        match table.is_bits() {
            true => (u32::from(self.max_bits), u32::from(self.max_gap_bits)),
            false => (u32::from(self.max_registers), u32::from(self.max_gap_registers)),
        }
    }
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Slave (unit) id.
    pub slave: u8,
    /// Table.
    pub table: RegisterTable,
    /// First protocol address read.
    pub start: u16,
    /// Registers (or bits) read.
    pub count: u16,
    /// Indices (into the planned spans) of the values it carries.
    pub members: Vec<usize>,
}

/// Plans the requests for `spans`, ordered by slave, table and address. Every span lands in
/// exactly one block that covers it whole.
pub fn plan(spans: &[Span], limits: &Limits) -> Vec<Block> {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| (spans[i].slave, spans[i].table, spans[i].address, std::cmp::Reverse(spans[i].width)));
    let mut blocks: Vec<Block> = Vec::new();
    for i in order {
        let s = spans[i];
        let (max, max_gap) = limits.for_table(s.table);
        let end = u32::from(s.address) + u32::from(s.width);
        if let Some(b) = blocks.last_mut().filter(|b| b.slave == s.slave && b.table == s.table) {
            let b_end = u32::from(b.start) + u32::from(b.count);
            let gap = u32::from(s.address).saturating_sub(b_end);
            let new_count = end.max(b_end) - u32::from(b.start);
            if gap <= max_gap && new_count <= max {
                b.count = new_count as u16;
                b.members.push(i);
                continue;
            }
        }
        blocks.push(Block { slave: s.slave, table: s.table, start: s.address, count: s.width, members: vec![i] });
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use RegisterTable::*;

    const LIMITS: Limits = Limits { max_registers: 125, max_bits: 2000, max_gap_registers: 10, max_gap_bits: 100 };

    fn span(slave: u8, table: RegisterTable, address: u16, width: u16) -> Span {
        Span { slave, table, address, width }
    }

    fn block(slave: u8, table: RegisterTable, start: u16, count: u16, members: &[usize]) -> Block {
        Block { slave, table, start, count, members: members.to_vec() }
    }

    #[test]
    fn adjacent_and_near_values_share_a_request() {
        // f32 at 0, u16 at 2, f32 at 12 (gap of 9 after 3): one request 0..14.
        let spans = [span(1, Holding, 0, 2), span(1, Holding, 2, 1), span(1, Holding, 12, 2)];
        assert_eq!(plan(&spans, &LIMITS), vec![block(1, Holding, 0, 14, &[0, 1, 2])]);
    }

    #[test]
    fn a_gap_wider_than_the_fill_splits() {
        // End of the first is 3; 14 - 3 = 11 > 10.
        let spans = [span(1, Holding, 0, 2), span(1, Holding, 2, 1), span(1, Holding, 14, 2)];
        assert_eq!(plan(&spans, &LIMITS), vec![block(1, Holding, 0, 3, &[0, 1]), block(1, Holding, 14, 2, &[2])]);
        let no_fill = Limits { max_gap_registers: 0, ..LIMITS };
        let spans = [span(1, Input, 4, 1), span(1, Input, 5, 2), span(1, Input, 8, 1)];
        assert_eq!(plan(&spans, &no_fill), vec![block(1, Input, 4, 3, &[0, 1]), block(1, Input, 8, 1, &[2])]);
    }

    #[test]
    fn slaves_and_tables_never_share_a_request_and_come_out_sorted() {
        let spans = [
            span(2, Holding, 0, 1),
            span(1, Input, 0, 1),
            span(1, Holding, 1, 1),
            span(1, Holding, 0, 1),
            span(1, Coil, 0, 1),
        ];
        assert_eq!(
            plan(&spans, &LIMITS),
            vec![
                block(1, Holding, 0, 2, &[3, 2]),
                block(1, Input, 0, 1, &[1]),
                block(1, Coil, 0, 1, &[4]),
                block(2, Holding, 0, 1, &[0]),
            ]
        );
    }

    #[test]
    fn overlapping_values_share_registers() {
        // The same two registers read as f32 and as u32, and a bit of the first.
        let spans = [span(1, Holding, 10, 2), span(1, Holding, 10, 2), span(1, Holding, 10, 1)];
        assert_eq!(plan(&spans, &LIMITS), vec![block(1, Holding, 10, 2, &[0, 1, 2])]);
    }

    #[test]
    fn requests_stop_at_125_registers() {
        // 70 f32 values back to back: 140 registers → 124 (62 values) + 16.
        let spans: Vec<Span> = (0..70).map(|i| span(1, Holding, i * 2, 2)).collect();
        let blocks = plan(&spans, &LIMITS);
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[0].start, blocks[0].count, blocks[0].members.len()), (0, 124, 62));
        assert_eq!((blocks[1].start, blocks[1].count, blocks[1].members.len()), (124, 16, 8));
        // A value is never split across requests: an f64 that would cross 125 starts a new one.
        let spans = [span(1, Holding, 0, 1), span(1, Holding, 122, 4)];
        let tight = Limits { max_gap_registers: 200, ..LIMITS };
        assert_eq!(plan(&spans, &tight), vec![block(1, Holding, 0, 1, &[0]), block(1, Holding, 122, 4, &[1])]);
        let device_limit = Limits { max_registers: 4, ..LIMITS };
        let spans = [span(1, Holding, 0, 2), span(1, Holding, 2, 2), span(1, Holding, 4, 1)];
        assert_eq!(plan(&spans, &device_limit), vec![block(1, Holding, 0, 4, &[0, 1]), block(1, Holding, 4, 1, &[2])]);
    }

    #[test]
    fn bits_use_the_bit_limits() {
        let spans = [span(1, Coil, 0, 1), span(1, Coil, 100, 1), span(1, Coil, 202, 1), span(1, Discrete, 1999, 1)];
        assert_eq!(
            plan(&spans, &LIMITS),
            vec![block(1, Coil, 0, 101, &[0, 1]), block(1, Coil, 202, 1, &[2]), block(1, Discrete, 1999, 1, &[3])]
        );
        let spans: Vec<Span> = (0..2001).map(|i| span(1, Discrete, i, 1)).collect();
        let blocks = plan(&spans, &LIMITS);
        assert_eq!(blocks.iter().map(|b| (b.start, b.count)).collect::<Vec<_>>(), vec![(0, 2000), (2000, 1)]);
    }

    #[test]
    fn no_values_no_requests() {
        assert_eq!(plan(&[], &LIMITS), vec![]);
    }
}
