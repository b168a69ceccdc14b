"""The demo world's vocabulary: industries with their skills and words, job tracks, names and places.

Plain data, no Django and no randomness: ``world.py`` draws from these lists, so editing one changes
every seeded world. Words are chosen so that text alone carries signal: a fintech startup's name,
description and positions mention fintech words and fintech skills.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class IndustryWords:
    name: str
    share: float  # relative number of startups (and of people who prefer it)
    skills: tuple[str, ...]  # lower-case, unique across the whole vocabulary
    products: tuple[str, ...]  # "X builds <product> for <customer>"
    customers: tuple[str, ...]
    name_roots: tuple[str, ...]  # pieces of startup names


@dataclass(frozen=True)
class Track:
    """A kind of job: the titles it uses, the general skills it needs and what it pays."""

    name: str
    share: float
    titles: tuple[str, ...]
    skills: tuple[str, ...]
    base_salary: int  # USD a year at mid level in a series A startup
    duties: tuple[str, ...]


INDUSTRIES: tuple[IndustryWords, ...] = (
    IndustryWords(
        "Fintech", 1.3,
        ("payments", "ledger systems", "kyc/aml", "risk modeling", "fraud detection", "open banking",
         "pci dss", "trading systems"),
        ("a payments API", "a business banking app", "real-time fraud scoring", "embedded lending",
         "a treasury platform", "card issuing infrastructure"),
        ("small businesses", "marketplaces", "credit unions", "freelancers", "CFOs"),
        ("Ledger", "Coin", "Vault", "Pay", "Fund", "Mint", "Tally", "Penny"),
    ),
    IndustryWords(
        "Healthtech", 1.1,
        ("hl7 fhir", "hipaa compliance", "ehr integration", "telemedicine", "medical imaging",
         "clinical workflows", "dicom", "remote patient monitoring"),
        ("a telehealth platform", "clinical workflow software", "AI-assisted radiology",
         "remote patient monitoring", "a care coordination app", "patient intake automation"),
        ("clinics", "hospitals", "care teams", "patients", "insurers"),
        ("Care", "Pulse", "Vita", "Medi", "Cura", "Heal", "Dose", "Clinic"),
    ),
    IndustryWords(
        "Edtech", 0.8,
        ("learning management systems", "adaptive learning", "scorm", "instructional design",
         "assessment design", "student information systems", "learning analytics", "gamified learning"),
        ("an adaptive tutoring app", "a learning management system", "coding bootcamps online",
         "assessment tooling", "a language learning app", "upskilling programs"),
        ("schools", "universities", "teachers", "students", "corporate L&D teams"),
        ("Learn", "Tutor", "Class", "Quiz", "Mentor", "Scholar", "Lesson", "Campus"),
    ),
    IndustryWords(
        "Climate", 1.0,
        ("energy modeling", "carbon accounting", "gis", "iot telemetry", "battery systems",
         "grid optimization", "remote sensing", "lifecycle assessment"),
        ("carbon accounting software", "grid-scale battery analytics", "a home energy app",
         "satellite-based emissions monitoring", "EV fleet charging", "a renewable project marketplace"),
        ("utilities", "manufacturers", "cities", "homeowners", "fleet operators"),
        ("Terra", "Volt", "Carbon", "Solar", "Grid", "Verde", "Tide", "Ember"),
    ),
    IndustryWords(
        "Developer Tools", 1.2,
        ("compilers", "language servers", "ci/cd", "observability", "developer experience", "api design",
         "open source maintenance", "build systems"),
        ("a faster CI service", "an observability platform", "an API testing tool", "a code review assistant",
         "infrastructure as code tooling", "a feature flag service"),
        ("engineering teams", "open source maintainers", "platform teams", "startups"),
        ("Stack", "Forge", "Commit", "Byte", "Build", "Shell", "Patch", "Lambda"),
    ),
    IndustryWords(
        "AI/ML", 1.4,
        ("pytorch", "tensorflow", "nlp", "computer vision", "recommender systems", "mlops",
         "llm fine-tuning", "reinforcement learning"),
        ("an LLM evaluation platform", "computer vision for quality control", "a recommendation engine API",
         "document understanding", "a vector search service", "AI agents for support teams"),
        ("enterprises", "support teams", "manufacturers", "retailers", "researchers"),
        ("Neural", "Cortex", "Vector", "Synapse", "Tensor", "Sense", "Mind", "Logic"),
    ),
    IndustryWords(
        "E-commerce", 1.0,
        ("shopify", "search relevance", "pricing optimization", "inventory management", "checkout optimization",
         "growth marketing", "a/b testing", "catalog management"),
        ("a headless commerce platform", "dynamic pricing", "a checkout that converts", "product search",
         "returns automation", "a social shopping app"),
        ("online retailers", "D2C brands", "marketplaces", "shoppers"),
        ("Cart", "Shop", "Basket", "Market", "Bazaar", "Deal", "Stall", "Aisle"),
    ),
    IndustryWords(
        "Gaming", 0.7,
        ("unity", "unreal engine", "game design", "multiplayer networking", "graphics programming",
         "shader programming", "game economy design", "level design"),
        ("a cooperative survival game", "multiplayer backend services", "a mobile puzzle game",
         "tools for game studios", "a VR rhythm game", "a game analytics suite"),
        ("players", "indie studios", "streamers", "esports teams"),
        ("Pixel", "Quest", "Arcade", "Level", "Loot", "Sprite", "Dragon", "Joystick"),
    ),
    IndustryWords(
        "Cybersecurity", 1.0,
        ("penetration testing", "threat modeling", "cryptography", "identity and access management", "siem",
         "incident response", "zero trust", "application security"),
        ("a zero-trust access platform", "cloud security posture management", "automated pentesting",
         "a secrets manager", "phishing-resistant authentication", "a managed detection service"),
        ("security teams", "banks", "SaaS companies", "governments"),
        ("Shield", "Guard", "Cipher", "Sentry", "Bastion", "Fort", "Lock", "Aegis"),
    ),
    IndustryWords(
        "Biotech", 0.7,
        ("bioinformatics", "genomics", "lab automation", "protein modeling", "cheminformatics",
         "clinical trial data", "lims", "single-cell analysis"),
        ("AI-designed proteins", "a lab automation platform", "genomic diagnostics",
         "a clinical trial data platform", "drug discovery software", "cell therapy manufacturing"),
        ("pharma companies", "research labs", "hospitals", "biotech startups"),
        ("Gene", "Helix", "Protea", "Cell", "Bio", "Enzyme", "Codon", "Assay"),
    ),
    IndustryWords(
        "Logistics", 0.8,
        ("route optimization", "supply chain planning", "warehouse management", "fleet telematics",
         "operations research", "edi integration", "demand forecasting", "last-mile delivery"),
        ("route optimization for couriers", "a freight marketplace", "warehouse robotics software",
         "supply chain visibility", "a last-mile delivery platform", "customs automation"),
        ("shippers", "carriers", "warehouses", "retailers", "couriers"),
        ("Freight", "Route", "Cargo", "Haul", "Dock", "Parcel", "Convoy", "Depot"),
    ),
    IndustryWords(
        "Media", 0.7,
        ("video encoding", "ad tech", "content moderation", "live streaming", "audience analytics",
         "digital rights management", "podcast production", "creator tools"),
        ("a creator monetization platform", "live streaming infrastructure", "AI video editing",
         "a podcast network app", "contextual advertising", "newsroom tools"),
        ("creators", "publishers", "broadcasters", "advertisers"),
        ("Studio", "Stream", "Story", "Reel", "Echo", "Canvas", "Signal", "Beacon"),
    ),
    IndustryWords(
        "Proptech", 0.5,
        ("real estate data", "property management", "mortgage origination", "bim modeling", "smart buildings",
         "construction scheduling", "geospatial pricing", "tenant experience"),
        ("property management software", "a digital mortgage", "construction scheduling", "smart building sensors",
         "a rental marketplace", "home valuation models"),
        ("landlords", "tenants", "builders", "brokers", "home buyers"),
        ("Nest", "Key", "Haven", "Brick", "Roof", "Estate", "Dwell", "Porch"),
    ),
    IndustryWords(
        "Mobility", 0.6,
        ("autonomous driving", "sensor fusion", "robotics", "slam", "lidar processing", "ros",
         "ev charging", "vehicle telematics"),
        ("autonomous delivery robots", "an EV charging network", "fleet electrification software",
         "driver safety analytics", "a micromobility platform", "robotaxi simulation"),
        ("cities", "fleet operators", "automakers", "commuters"),
        ("Motion", "Drive", "Wheel", "Axle", "Orbit", "Glide", "Rover", "Transit"),
    ),
)

TRACKS: tuple[Track, ...] = (
    Track("backend", 1.6, ("Backend Engineer", "Software Engineer", "API Engineer"),
          ("python", "go", "java", "node.js", "postgresql", "redis", "kafka", "django", "graphql", "grpc",
           "microservices", "distributed systems"),
          165_000, ("design and scale our core services", "own the APIs our customers build on",
                    "make our data model fast and correct")),
    Track("frontend", 1.0, ("Frontend Engineer", "UI Engineer"),
          ("javascript", "typescript", "react", "vue", "css", "next.js", "accessibility", "web performance"),
          155_000, ("build the product our customers use every day", "craft a fast, accessible web app",
                    "own our design system in code")),
    Track("fullstack", 1.2, ("Full-Stack Engineer", "Product Engineer"),
          ("typescript", "react", "node.js", "python", "postgresql", "graphql", "docker", "css"),
          160_000, ("ship features end to end", "own product areas from database to UI",
                    "iterate quickly with design and customers")),
    Track("mobile", 0.6, ("iOS Engineer", "Android Engineer", "Mobile Engineer"),
          ("swift", "kotlin", "react native", "flutter", "ios", "android"),
          160_000, ("build our mobile apps", "make our app fast and delightful on every phone")),
    Track("data", 0.8, ("Data Engineer", "Analytics Engineer", "Data Scientist"),
          ("sql", "spark", "airflow", "dbt", "data warehousing", "pandas", "statistics", "python"),
          160_000, ("build reliable data pipelines", "turn our data into decisions",
                    "own the warehouse and its models")),
    Track("ml", 0.8, ("Machine Learning Engineer", "Applied Scientist", "ML Platform Engineer"),
          ("machine learning", "deep learning", "scikit-learn", "feature engineering", "python", "pytorch",
           "statistics"),
          185_000, ("train and ship models to production", "build our ML platform",
                    "turn research ideas into product")),
    Track("devops", 0.7, ("DevOps Engineer", "Site Reliability Engineer", "Platform Engineer", "Cloud Engineer"),
          ("aws", "gcp", "kubernetes", "docker", "terraform", "linux", "prometheus", "ci/cd"),
          170_000, ("keep our platform reliable and fast", "automate our cloud infrastructure",
                    "own observability and on-call health")),
    Track("security", 0.4, ("Security Engineer", "Application Security Engineer"),
          ("application security", "threat modeling", "linux", "networking", "cryptography", "aws"),
          175_000, ("secure our product and infrastructure", "build security into every release")),
    Track("design", 0.5, ("Product Designer", "UX Designer"),
          ("figma", "user research", "prototyping", "design systems", "interaction design"),
          145_000, ("design the product end to end", "run research with our customers",
                    "shape our design system")),
    Track("embedded", 0.4, ("Embedded Software Engineer", "Firmware Engineer", "Robotics Engineer"),
          ("c", "c++", "rust", "embedded systems", "rtos", "fpga"),
          170_000, ("write firmware for our devices", "bring our hardware to life")),
)

# (title prefix, years required from, to, salary factor, share of positions)
SENIORITY: tuple[tuple[str, int, int, float, float], ...] = (
    ("Junior", 0, 2, 0.72, 0.12),
    ("", 2, 5, 1.0, 0.33),
    ("Senior", 5, 9, 1.28, 0.33),
    ("Lead", 6, 12, 1.42, 0.08),
    ("Staff", 8, 15, 1.55, 0.10),
    ("Principal", 12, 20, 1.8, 0.04),
)

# The Stage values of profiles.models, in order, with what a startup at each stage looks like.
STAGES = ("idea", "pre_seed", "seed", "series_a", "series_b", "series_c_plus")
STAGE_SHARE = (0.10, 0.20, 0.30, 0.20, 0.12, 0.08)
STAGE_TEAM = (2, 4, 11, 35, 90, 260)  # median team size
STAGE_FUNDING = (0, 400_000, 2_500_000, 14_000_000, 45_000_000, 140_000_000)  # median raised so far, USD
STAGE_NEXT_ROUND = (500_000, 2_000_000, 10_000_000, 30_000_000, 70_000_000, 150_000_000)  # USD
# Who raises now, by stage: most seed and Series A startups, fewer later ones (they raise less often).
STAGE_RAISING_SHARE = (0.5, 0.75, 0.85, 0.8, 0.5, 0.3)
OPENINGS_SHARE = (0.7, 0.2, 0.1)  # positions hiring 1, 2, 3 people
STAGE_SALARY_FACTOR = (0.78, 0.85, 0.93, 1.0, 1.06, 1.12)
STAGE_SENTENCES = (
    "We are at the idea stage and validating with design partners.",
    "We are pre-seed, with our first paying pilots.",
    "We raised a seed round and are finding product-market fit.",
    "After our Series A we are scaling the team.",
    "Post Series B, we are expanding into new markets.",
    "We are a late-stage company growing internationally.",
)

# The RemotePreference values of profiles.models, in order, and how common each is among developers.
REMOTE_PREFERENCES = ("remote", "hybrid", "onsite", "any")
REMOTE_PREFERENCE_SHARE = (0.35, 0.25, 0.15, 0.25)

# (city, relative number of people and startups there)
LOCATIONS: tuple[tuple[str, float], ...] = (
    ("San Francisco, CA", 6), ("New York, NY", 5), ("Seattle, WA", 2), ("Austin, TX", 2), ("Boston, MA", 2),
    ("Los Angeles, CA", 2), ("Denver, CO", 1), ("Chicago, IL", 1.5), ("Miami, FL", 1), ("Toronto, Canada", 2),
    ("Vancouver, Canada", 1), ("London, UK", 4), ("Berlin, Germany", 3), ("Paris, France", 2),
    ("Amsterdam, Netherlands", 1.5), ("Stockholm, Sweden", 1), ("Lisbon, Portugal", 1), ("Barcelona, Spain", 1),
    ("Dublin, Ireland", 1), ("Zurich, Switzerland", 1), ("Warsaw, Poland", 1), ("Tel Aviv, Israel", 1.5),
    ("Bangalore, India", 2.5), ("Singapore", 1.5), ("Sydney, Australia", 1), ("Sao Paulo, Brazil", 1.5),
    ("Mexico City, Mexico", 1), ("Lagos, Nigeria", 1), ("Nairobi, Kenya", 0.7), ("Tokyo, Japan", 1),
    ("Seoul, South Korea", 1),
)

FIRST_NAMES = (
    "Aaliyah", "Aarav", "Abigail", "Adam", "Adebayo", "Aditi", "Ahmed", "Aiko", "Alejandro", "Alex", "Alice",
    "Amara", "Amir", "Ana", "Andrei", "Anika", "Anna", "Arjun", "Ava", "Ben", "Bianca", "Camila", "Carlos",
    "Charlotte", "Chen", "Chloe", "Chidi", "Daniel", "David", "Diego", "Elena", "Eli", "Emeka", "Emily",
    "Emma", "Ethan", "Fatima", "Felix", "Freya", "Gabriel", "Grace", "Hana", "Hannah", "Hiro", "Ibrahim",
    "Ines", "Isaac", "Isabella", "Ivan", "Jack", "Jakub", "James", "Jana", "Javier", "Jin", "Jonas", "Jordan",
    "Jose", "Julia", "Kai", "Karim", "Kate", "Kenji", "Kofi", "Lara", "Layla", "Leah", "Leila", "Leo", "Liam",
    "Lina", "Lucas", "Lucia", "Luis", "Maya", "Mateo", "Mei", "Mia", "Michael", "Mohammed", "Nadia", "Naomi",
    "Nikhil", "Nina", "Noah", "Nora", "Olga", "Oliver", "Omar", "Pablo", "Priya", "Rafael", "Rahul", "Ravi",
    "Rosa", "Ruby", "Sam", "Samuel", "Santiago", "Sara", "Sebastian", "Sofia", "Sophie", "Tariq", "Theo",
    "Thomas", "Tomas", "Valentina", "Victor", "Wei", "Yara", "Yuki", "Yusuf", "Zara", "Zoe",
)

LAST_NAMES = (
    "Abbott", "Adeyemi", "Ahmed", "Ali", "Alvarez", "Anderson", "Bakker", "Banerjee", "Becker", "Bianchi",
    "Brown", "Campbell", "Chen", "Cohen", "Costa", "Da Silva", "Das", "Davies", "Diaz", "Dubois", "Eriksson",
    "Evans", "Fernandez", "Fischer", "Garcia", "Gomez", "Gonzalez", "Gupta", "Hansen", "Hernandez", "Hoffmann",
    "Horvath", "Hughes", "Ibrahim", "Ito", "Ivanov", "Jansen", "Johnson", "Kaur", "Kim", "Kowalski", "Kumar",
    "Larsen", "Laurent", "Lee", "Li", "Lopez", "Martin", "Martinez", "Mehta", "Meyer", "Miller", "Moreau",
    "Morris", "Muller", "Murphy", "Nakamura", "Nguyen", "Novak", "Obi", "Okafor", "Okonkwo", "Olsen",
    "Oliveira", "Park", "Patel", "Perez", "Petrov", "Popescu", "Rahman", "Ramirez", "Rao", "Reddy", "Reyes",
    "Rodriguez", "Rossi", "Russo", "Sanchez", "Santos", "Sato", "Schmidt", "Schneider", "Shah", "Silva",
    "Singh", "Smith", "Sorensen", "Suzuki", "Tanaka", "Taylor", "Thompson", "Torres", "Tran", "Varga",
    "Walker", "Wang", "Weber", "Williams", "Wilson", "Wong", "Wu", "Yamamoto", "Yilmaz", "Zhang", "Zhou",
)

STARTUP_NAME_SUFFIXES = ("ly", "ify", "io", "hub", "labs", "base", "flow", "wise", "stack", "works", "AI", "HQ")
STARTUP_NAME_PREFIXES = ("Open", "Bright", "Clear", "True", "Next", "Blue", "North", "Swift", "Deep", "Kind",
                         "Bold", "Nova", "Prime", "Echo", "Atlas", "Lumen", "Polar", "Iron", "Red", "Zen")

FIRM_FIRST_WORDS = ("Northstar", "Granite", "Blue Harbor", "Redwood", "Summit", "Lighthouse", "Foundry",
                    "Meridian", "Pioneer", "Cascade", "Sequoia Row", "Harbor", "Keystone", "Evergreen",
                    "Silverline", "Orchard", "Compass", "Riverbend", "Alpine", "Beacon Hill")
FIRM_LAST_WORDS = ("Ventures", "Capital", "Partners", "Fund", "Investments", "Angels", "VC", "Growth")


def all_skills() -> list[tuple[str, str | None]]:
    """Every skill once, as (name, industry name or None for general skills), industries first."""
    skills: dict[str, str | None] = {}
    for industry in INDUSTRIES:
        for skill in industry.skills:
            skills.setdefault(skill, industry.name)
    for track in TRACKS:
        for skill in track.skills:
            skills.setdefault(skill, None)
    return list(skills.items())
