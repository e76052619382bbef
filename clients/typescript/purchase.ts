// A guest purchase typed by the API contract: every request body, query and answer below
// comes from schema.d.ts, which openapi-typescript generates from openapi.json
// (`npm run generate`), so a field the document does not declare fails `npm run check`.
import type { components, operations } from "./schema";

type Schemas = components["schemas"];
type Operation = keyof operations;

/** The JSON body an operation takes. */
type Body<Op extends Operation> = operations[Op] extends {
  requestBody: { content: { "application/json": infer B } };
}
  ? B
  : never;

/** What an operation answers with status S, as JSON. */
type Answer<Op extends Operation, S extends number> = operations[Op]["responses"] extends {
  [status in S]: { content: { "application/json": infer A } };
}
  ? A
  : never;

type Query<Op extends Operation> = operations[Op]["parameters"]["query"];

export class ProblemError extends Error {
  constructor(readonly problem: Schemas["Problem"]) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
  }
}

export class Shop {
  constructor(private readonly baseUrl: string) {}

  listProducts(query: Query<"list_products">): Promise<Answer<"list_products", 200>> {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null) search.set(name, String(value));
    }
    return this.call("GET", `/store/products?${search}`, 200);
  }

  openCart(body: Body<"open_cart">): Promise<Answer<"open_cart", 201>> {
    return this.call("POST", "/store/carts", 201, body);
  }

  addLine(cartId: string, body: Body<"add_line">): Promise<Answer<"add_line", 200>> {
    return this.call("POST", `/store/carts/${encodeURIComponent(cartId)}/lines`, 200, body);
  }

  checkOut(
    cartId: string,
    idempotencyKey: string,
    body: Body<"check_out">,
  ): Promise<Answer<"check_out", 201>> {
    const path = `/store/carts/${encodeURIComponent(cartId)}/checkout`;
    return this.call("POST", path, 201, body, { "Idempotency-Key": idempotencyKey });
  }

  storeOrder(orderId: string, token: string): Promise<Answer<"store_order", 200>> {
    const query = new URLSearchParams({ token });
    return this.call("GET", `/store/orders/${encodeURIComponent(orderId)}?${query}`, 200);
  }

  private async call<A>(
    method: "GET" | "POST",
    path: string,
    expected: number,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<A> {
    const answer = await fetch(this.baseUrl + path, {
      method,
      headers: body === undefined ? headers : { ...headers, "Content-Type": "application/json" },
      body: body === undefined ? null : JSON.stringify(body),
    });
    if (answer.status !== expected) {
      throw new ProblemError((await answer.json()) as Schemas["Problem"]);
    }
    return (await answer.json()) as A;
  }
}

/** The order a checkout placed and the secret a guest reads it with. The document does not
 * describe the checkout's answer in detail yet, so these two fields are checked here. */
function placedOrder(answer: unknown): { id: string; access_token: string } {
  if (typeof answer === "object" && answer !== null) {
    const { id, access_token } = answer as Record<string, unknown>;
    if (typeof id === "string" && typeof access_token === "string") return { id, access_token };
  }
  throw new Error("the checkout's answer names no order");
}

/** Buy one unit of the first variant in stock in the US market, as a guest paying by card. */
export async function buyAsGuest(
  shop: Shop,
  email: string,
  address: Schemas["Address"],
): Promise<Schemas["OrderOut"]> {
  const products = await shop.listProducts({ market: "US" });
  const variant = products
    .flatMap((product) => product.variants)
    .find((candidate) => candidate.stock === "in_stock" && candidate.price !== null);
  if (variant === undefined) throw new Error("nothing is in stock in the US market");
  const cart: Schemas["CartOut"] = await shop.addLine((await shop.openCart({ market: "US" })).id, {
    sku: variant.sku,
    quantity: 1,
  });
  const placed = placedOrder(
    await shop.checkOut(cart.id, crypto.randomUUID(), {
      email,
      shipping_address: address,
      payment: { method: "card", token: "tok_visa" },
    }),
  );
  const order = await shop.storeOrder(placed.id, placed.access_token);
  if (order.total.amount !== cart.total.amount || order.total.currency !== cart.total.currency) {
    throw new Error(`the order's total ${order.total.amount} is not the cart's`);
  }
  return order;
}
