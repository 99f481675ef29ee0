//! Domain types: plain data, no behaviour that needs a store.

mod booking;
mod directory;
mod event;
mod hold;
mod notification;

pub use booking::*;
pub use directory::*;
pub use event::*;
pub use hold::*;
pub use notification::*;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name reads back as the variant that writes it, serde writes the same names,
    /// and nothing else reads as a variant.
    fn round_trip<T>(values: &[T])
    where
        T: Copy + std::fmt::Debug + PartialEq + std::str::FromStr + serde::Serialize,
    {
        for &v in values {
            let name = serde_json::to_value(v).expect("serialize");
            let back: T = name.as_str().expect("a string").parse().unwrap_or_else(|_| panic!("{name} does not parse"));
            assert_eq!(back, v);
        }
        assert!("".parse::<T>().is_err() && "Confirmed".parse::<T>().is_err());
    }

    #[test]
    fn names_read_back_as_written() {
        use BookingStatus as B;
        round_trip(&[B::Confirmed, B::Waiting, B::Cancelled, B::Offered, B::Declined, B::Expired]);
        assert_eq!(B::NAMES.len(), 6);
        use HistoryAction as H;
        round_trip(&[H::Created, H::Cancelled, H::Promoted, H::Modified, H::Offered, H::Accepted, H::Declined, H::Expired]);
        assert_eq!(H::NAMES.len(), 8);
        round_trip(&[WaitlistPolicy::Fifo, WaitlistPolicy::FirstFit, WaitlistPolicy::Partial]);
        round_trip(&[EventStatus::Upcoming, EventStatus::Cancelled]);
        round_trip(&[Role::User, Role::Organizer, Role::OrgAdmin]);
        round_trip(&[InviteStatus::Pending, InviteStatus::Accepted, InviteStatus::Revoked]);
        use DeliveryStatus as D;
        round_trip(&[D::Pending, D::Sent, D::Delivered, D::Failed]);
        use NotificationKind as N;
        let kinds = [
            N::BookingConfirmed,
            N::BookingWaitlisted,
            N::BookingCancelled,
            N::SeatsCancelled,
            N::WaitlistPromoted,
            N::WaitlistOffer,
            N::OfferAccepted,
            N::OfferExpired,
            N::OfferDeclined,
            N::HoldExpired,
            N::EventUpdated,
            N::EventCancelled,
            N::InvitationReceived,
        ];
        round_trip(&kinds);
        assert_eq!(N::NAMES, kinds.map(|k| k.as_str()).as_slice());
    }
}
