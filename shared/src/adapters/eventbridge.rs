//! EventBridge: dlq-redrive puts a rule's dead letters on their bus again.

use crate::error::{Error, Result};
use crate::redrive::message::{BusEvent, MAX_PUT_EVENTS_BYTES, bus_event};
use crate::redrive::ports::{EntryFailure, Outgoing};
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

#[derive(Clone, Debug)]
pub struct EventBridge {
    client: Client,
}

impl EventBridge {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// `PutEvents` of the events in the entries' bodies to `bus`, in calls EventBridge
    /// takes (256 KiB in all, by its own count of an entry's size). An entry whose body is
    /// not an event that can be put fails alone.
    pub async fn put_events(&self, bus: &str, entries: &[Outgoing]) -> Result<Vec<EntryFailure>> {
        let mut failed = Vec::new();
        let mut events = Vec::new();
        for e in entries {
            match bus_event(&e.body) {
                Ok(event) => events.push((e.clone(), event)),
                Err(why) => failed.push(EntryFailure {
                    id: e.id.clone(),
                    code: "NotAnEvent".into(),
                    message: why,
                    sender_fault: true,
                }),
            }
        }
        let (kept, events): (Vec<Outgoing>, Vec<BusEvent>) = events.into_iter().unzip();
        let sizes: Vec<usize> = events.iter().map(BusEvent::size).collect();
        let at: std::collections::BTreeMap<&str, &BusEvent> =
            kept.iter().map(|o| o.id.as_str()).zip(&events).collect();
        failed.extend(
            super::send_in_runs(&kept, (&sizes, MAX_PUT_EVENTS_BYTES), "PutEvents", |run| {
                let run: Vec<(&str, &BusEvent)> = run
                    .iter()
                    .map(|o| (o.id.as_str(), at[o.id.as_str()]))
                    .collect();
                self.put_run(bus, run)
            })
            .await?,
        );
        Ok(failed)
    }

    async fn put_run(&self, bus: &str, run: Vec<(&str, &BusEvent)>) -> Result<Vec<EntryFailure>> {
        let mut req = self.client.put_events();
        for (_, event) in &run {
            let event = (*event).clone();
            let time = event
                .time
                .as_deref()
                .and_then(|t| DateTime::from_str(t, Format::DateTimeWithOffset).ok());
            req = req.entries(
                PutEventsRequestEntry::builder()
                    .event_bus_name(bus)
                    .source(event.source)
                    .detail_type(event.detail_type)
                    .detail(event.detail)
                    .set_resources(Some(event.resources).filter(|r| !r.is_empty()))
                    .set_time(time)
                    .build(),
            );
        }
        let out = req
            .send()
            .await
            .map_err(|e| Error::aws("events", "PutEvents", e))?;
        // Entry i of the answer is entry i of the request.
        Ok(out
            .entries()
            .iter()
            .zip(&run)
            .filter_map(|(answer, (id, _))| {
                answer.error_code().map(|code| EntryFailure {
                    id: (*id).to_owned(),
                    code: code.to_owned(),
                    message: answer.error_message().unwrap_or_default().to_owned(),
                    // A bad entry fails again; a throttle or an internal failure may not.
                    sender_fault: !matches!(
                        code,
                        "ThrottlingException" | "InternalException" | "InternalFailure"
                    ),
                })
            })
            .collect())
    }
}
