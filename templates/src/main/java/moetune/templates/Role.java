package moetune.templates;

/** The two speakers of a conversation; the ordinal indexes {@link ConversationTemplate#roles()}. */
public enum Role {
  USER,
  ASSISTANT;

  /** The other speaker. */
  public Role other() {
    return this == USER ? ASSISTANT : USER;
  }
}
