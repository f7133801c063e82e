// A frontend's first use of the engine, through a client generated from openapi.json
// (openapi-typescript writes schema.d.ts; openapi-fetch calls the API with its types):
// log in, create a lead, list its tasks, complete one. `tsc --strict` checks it against the
// contract: a renamed field, path or operation fails the type check, and so does a field the
// engine always sends that the document left optional (every answer's fields are `required`
// unless the engine may leave them out), so no field is checked for `undefined` here.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

type Task = components["schemas"]["TaskOut"];
type ApiError = components["schemas"]["Error"];

export class ApiFailure extends Error {
  constructor(readonly body: ApiError) {
    super(`${body.code}: ${body.message}`);
  }
}

export async function firstFollowUp(baseUrl: string, email: string, password: string): Promise<Task> {
  const api = createClient<paths>({ baseUrl });

  const login = await api.POST("/api/auth/login", { body: { email, password } });
  if (login.error) throw new ApiFailure(login.error);
  const token: string = login.data.access_token;
  const auth = { Authorization: `Bearer ${token}` };

  // The Idempotency-Key makes a retried click create one lead, not two.
  const created = await api.POST("/api/leads", {
    params: { header: { "Idempotency-Key": crypto.randomUUID() }, query: { reject_duplicates: false } },
    headers: auth,
    body: { first_name: "Jane", last_name: "Doe", phone: "(415) 555-2671", email: "jane@example.com" },
  });
  if (created.error) throw new ApiFailure(created.error);
  const leadId: number = created.data.id;
  const owner: number | null = created.data.assigned_to_id;

  const listed = await api.GET("/api/leads/{lead_id}/tasks", {
    params: { path: { lead_id: leadId }, query: { status: "PENDING", page_size: 10 } },
    headers: auth,
  });
  if (listed.error) throw new ApiFailure(listed.error);
  const pagination = listed.response.headers.get("X-Pagination");
  const task = listed.data[0]; // the list may be empty: that, and only that, is checked
  if (task === undefined) throw new Error(`no open task yet (${pagination ?? "no pagination"})`);
  const due: string = task.due_at;
  console.log(`task ${task.id} for lead ${leadId} (owner ${owner ?? "none"}) due ${due}`);

  const completed = await api.POST("/api/leads/tasks/{task_id}/complete", {
    params: { path: { task_id: task.id } },
    headers: auth,
    body: { outcome: "done", notes: "Called back, booked a consultation" },
  });
  if (completed.error) {
    // A frontend branches on the code, never on the message.
    if (completed.error.code === "task_closed") return task;
    throw new ApiFailure(completed.error);
  }
  return completed.data;
}

// The coordinator's live stream (docs/guides/event-stream.md): a short-lived stream token from the
// API, then the browser's EventSource, which cannot send an Authorization header. The browser
// reconnects by itself with Last-Event-ID and the stream replays what was missed; a `reset` asks
// the screen to reload from the API.
type StreamToken = components["schemas"]["StreamTokenOut"];
export const STREAM_EVENTS = [
  "lead.assigned",
  "task.assigned",
  "task.claimed",
  "task.due_soon",
  "task.overdue",
  "reply.received",
  "sla.warning",
  "sla.breach",
  "notification",
] as const;
export type StreamEventType = (typeof STREAM_EVENTS)[number];

export async function followMyStream(
  baseUrl: string,
  accessToken: string,
  onEvent: (type: StreamEventType, data: { id: number; type: string; at: string }, id: string) => void,
  onReset: () => void,
): Promise<EventSource> {
  const api = createClient<paths>({ baseUrl });
  const issued = await api.POST("/api/me/stream-token", { headers: { Authorization: `Bearer ${accessToken}` } });
  if (issued.error) throw new ApiFailure(issued.error);
  const grant: StreamToken = issued.data;
  const expiresIn: number = grant.expires_in; // open it before this many seconds pass
  const url = new URL(grant.stream_url);
  url.searchParams.set("token", grant.token);
  const stream = new EventSource(url);
  for (const type of STREAM_EVENTS) {
    stream.addEventListener(type, (event) => {
      const message = event as MessageEvent<string>;
      onEvent(type, JSON.parse(message.data), message.lastEventId);
    });
  }
  stream.addEventListener("reset", () => onReset());
  console.log(`stream open (its token was good for ${expiresIn} s)`);
  return stream;
}
