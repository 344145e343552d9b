//! The bureau's shared vocabulary of water sources and permit states: zones, permits, withdrawals, fees and
//! reports all speak it, so it lives below every feature folder.

use crate::text_enum;

text_enum! {
    /// Water source of a permit or zone.
    pub enum SourceType {
        Surface = ("surface", "地表水"),
        GroundwaterShallow = ("groundwater_shallow", "浅层地下水"),
        GroundwaterDeep = ("groundwater_deep", "深层地下水"),
        Karst = ("karst", "岩溶水"),
        Reclaimed = ("reclaimed", "再生水"),
        MineDrainage = ("mine_drainage", "矿井疏干水"),
    }
}

impl SourceType {
    /// Groundwater in the sense of the zone rules and the permit number's `G`.
    pub fn is_groundwater(self) -> bool {
        matches!(self, Self::GroundwaterShallow | Self::GroundwaterDeep | Self::Karst | Self::MineDrainage)
    }
}

text_enum! {
    /// A permit's status. `expired` is never stored: an approved or suspended permit past `valid_to` reads as expired.
    pub enum PermitStatus {
        Draft = ("draft", "草稿"),
        Submitted = ("submitted", "已提交"),
        Approved = ("approved", "已批准"),
        Rejected = ("rejected", "不予批准"),
        Suspended = ("suspended", "已暂停"),
        Revoked = ("revoked", "已吊销"),
        Cancelled = ("cancelled", "已注销"),
        Expired = ("expired", "已过期"),
    }
}

impl PermitStatus {
    /// Stored statuses of a permit that is issued and not ended (in force unless past `valid_to`).
    pub const IN_FORCE: [PermitStatus; 2] = [PermitStatus::Approved, PermitStatus::Suspended];

    /// [`Self::IN_FORCE`] as stored.
    pub fn in_force_texts() -> [&'static str; 2] {
        Self::IN_FORCE.map(Self::as_str)
    }
}
